"""``ResourceStore``: the one door to stored resources (versions, encryption, search columns).

Routes and services never query tables themselves. The store flushes, never commits: the request's
session (``gateway.db.get_session``) commits once, so a change and what records it land together.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import BadRequest, Conflict, Gone, NotFound, PreconditionFailed
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.tables import resource_identifiers, resource_versions

rv = resource_versions


@dataclass(frozen=True)
class SearchColumns:
    """What a resource exposes to search; the store hashes the sensitive parts."""

    patient_ssin: str | None = None
    status: str | None = None
    authored_on: datetime | None = None
    author_nihdi: str | None = None
    identifiers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class StoredVersion:
    resource_type: str
    logical_id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    body: bytes  # the JSON as stored, meta included; sent as is (DESIGN.md 9: no re-serialising)
    status: str | None = None
    author_nihdi: str | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass(frozen=True)
class Range:
    """Half-open instant range [low, high); either end may be open."""

    low: datetime | None = None
    high: datetime | None = None


@dataclass(frozen=True)
class Criteria:
    """A parsed search. Every field narrows the result (AND); ``statuses`` is an OR list."""

    patient_ssin: str | None = None
    identifier: tuple[str, str] | None = None
    statuses: tuple[str, ...] = ()
    authored: tuple[Range, ...] = ()
    author_nihdi: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Keyset paging position: newest first by creation time, then by id (stable under inserts)."""

    created_at: datetime
    logical_id: str

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.logical_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            stamp, logical_id = raw.split("|", 1)
            return cls(datetime.fromisoformat(stamp), logical_id)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("invalid paging cursor", expression="_cursor") from exc


@dataclass
class Page:
    items: list[StoredVersion]
    total: int
    next_cursor: Cursor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns, PostgreSQL its session's zone;
    # everything stored is UTC, and HTTP dates need exactly UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ResourceStore:
    def __init__(self, session: AsyncSession, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring

    # -- writing ---------------------------------------------------------------------------------

    async def create(
        self, resource_type: str, resource: dict[str, Any], columns: SearchColumns
    ) -> StoredVersion:
        """Store version 1 of a new resource. Raises ``IdentifierTaken`` if a business identifier
        is already held by another resource of the type (the unique token keeps retries single)."""
        logical_id = uuid.uuid4().hex
        now = _now()
        # Tokens first, in a savepoint: when one is taken nothing else has been written, and the
        # caller (a conditional create) can look up the winner in the same transaction.
        await self._write_tokens(resource_type, logical_id, columns.identifiers)
        return await self._insert_version(resource_type, logical_id, 1, now, now, resource, columns)

    async def update(
        self,
        resource_type: str,
        logical_id: str,
        resource: dict[str, Any],
        columns: SearchColumns,
        *,
        expected_version: int,
    ) -> StoredVersion:
        """Write a new version if, and only if, ``expected_version`` is still current.

        Compare-and-set on ``version_id``: of two writers racing from the same version exactly one
        wins, on SQLite (one writer at a time) and on PostgreSQL (the loser's UPDATE waits for the
        winner's row lock, then matches no row).
        """
        result = await self.session.execute(
            update(rv)
            .where(
                rv.c.resource_type == resource_type,
                rv.c.logical_id == logical_id,
                rv.c.version_id == expected_version,
                rv.c.is_current.is_(True),
            )
            .values(is_current=False)
            .returning(rv.c.version_id)
        )
        if result.first() is None:
            current = await self.read(resource_type, logical_id)  # 404/410 when it is not there
            raise PreconditionFailed(
                f"version {expected_version} is not current (current is {current.version_id})"
            )
        created_at = await self._created_at(resource_type, logical_id)
        stored = await self._insert_version(
            resource_type, logical_id, expected_version + 1, _now(), created_at, resource, columns
        )
        await self.session.execute(
            resource_identifiers.delete().where(
                resource_identifiers.c.resource_type == resource_type,
                resource_identifiers.c.logical_id == logical_id,
            )
        )
        await self._write_tokens(resource_type, logical_id, columns.identifiers)
        return stored

    async def _created_at(self, resource_type: str, logical_id: str) -> datetime:
        value = await self.session.scalar(
            select(rv.c.created_at).where(
                rv.c.resource_type == resource_type,
                rv.c.logical_id == logical_id,
                rv.c.version_id == 1,
            )
        )
        return _aware(value) if value is not None else _now()

    async def _insert_version(
        self,
        resource_type: str,
        logical_id: str,
        version_id: int,
        now: datetime,
        created_at: datetime,
        resource: dict[str, Any],
        columns: SearchColumns,
    ) -> StoredVersion:
        resource["id"] = logical_id
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version_id)
        meta["lastUpdated"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        resource["meta"] = meta
        body = orjson.dumps(resource)
        blob = self.keyring.encrypt(body, associated_data(resource_type, logical_id, version_id))
        await self.session.execute(
            rv.insert().values(
                resource_type=resource_type,
                logical_id=logical_id,
                version_id=version_id,
                is_current=True,
                deleted=False,
                last_updated=now,
                created_at=created_at,
                key_id=self.keyring.key_id,
                body=blob,
                patient_hmac=self._patient_hash(columns.patient_ssin),
                status=columns.status,
                authored_on=columns.authored_on,
                author_nihdi=columns.author_nihdi,
            )
        )
        return StoredVersion(
            resource_type,
            logical_id,
            version_id,
            now,
            False,
            body,
            status=columns.status,
            author_nihdi=columns.author_nihdi,
        )

    async def _write_tokens(
        self, resource_type: str, logical_id: str, identifiers: Sequence[tuple[str, str]]
    ) -> None:
        if not identifiers:
            return
        rows = [
            {
                "resource_type": resource_type,
                "token_hmac": self.identifier_hash(system, value),
                "logical_id": logical_id,
            }
            for system, value in dict.fromkeys(identifiers)
        ]
        try:
            async with self.session.begin_nested():
                await self.session.execute(resource_identifiers.insert(), rows)
        except IntegrityError as exc:
            raise IdentifierTaken(resource_type) from exc

    # -- reading ---------------------------------------------------------------------------------

    async def read(self, resource_type: str, logical_id: str) -> StoredVersion:
        row = (
            await self.session.execute(
                select(rv).where(
                    rv.c.resource_type == resource_type,
                    rv.c.logical_id == logical_id,
                    rv.c.is_current.is_(True),
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"{resource_type}/{logical_id} is not known")
        stored = self._decrypt(row)
        if stored.deleted:
            raise Gone(f"{resource_type}/{logical_id} was deleted")
        return stored

    async def vread(self, resource_type: str, logical_id: str, version_id: int) -> StoredVersion:
        row = (
            await self.session.execute(
                select(rv).where(
                    rv.c.resource_type == resource_type,
                    rv.c.logical_id == logical_id,
                    rv.c.version_id == version_id,
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"{resource_type}/{logical_id}/_history/{version_id} is not known")
        return self._decrypt(row)

    async def history(self, resource_type: str, logical_id: str) -> list[StoredVersion]:
        rows = (
            await self.session.execute(
                select(rv)
                .where(rv.c.resource_type == resource_type, rv.c.logical_id == logical_id)
                .order_by(rv.c.version_id.desc())
            )
        ).all()
        if not rows:
            raise NotFound(f"{resource_type}/{logical_id} is not known")
        return [self._decrypt(row) for row in rows]

    async def search(
        self, resource_type: str, criteria: Criteria, *, count: int, cursor: Cursor | None = None
    ) -> Page:
        where = [
            rv.c.resource_type == resource_type,
            rv.c.is_current.is_(True),
            rv.c.deleted.is_(False),
        ]
        if criteria.patient_ssin is not None:
            where.append(rv.c.patient_hmac == self._patient_hash(criteria.patient_ssin))
        if criteria.identifier is not None:
            token = self.identifier_hash(*criteria.identifier)
            where.append(
                rv.c.logical_id.in_(
                    select(resource_identifiers.c.logical_id).where(
                        resource_identifiers.c.resource_type == resource_type,
                        resource_identifiers.c.token_hmac == token,
                    )
                )
            )
        if criteria.statuses:
            where.append(rv.c.status.in_(criteria.statuses))
        for span in criteria.authored:
            if span.low is not None:
                where.append(rv.c.authored_on >= span.low)
            if span.high is not None:
                where.append(rv.c.authored_on < span.high)
        if criteria.author_nihdi is not None:
            where.append(rv.c.author_nihdi == criteria.author_nihdi)

        total = await self.session.scalar(select(func.count()).select_from(rv).where(*where))
        page_where = list(where)
        if cursor is not None:
            page_where.append(
                or_(
                    rv.c.created_at < cursor.created_at,
                    and_(rv.c.created_at == cursor.created_at, rv.c.logical_id < cursor.logical_id),
                )
            )
        rows = (
            await self.session.execute(
                select(rv)
                .where(*page_where)
                .order_by(rv.c.created_at.desc(), rv.c.logical_id.desc())
                .limit(count + 1)
            )
        ).all()
        items = [self._decrypt(row) for row in rows[:count]]
        next_cursor = None
        if len(rows) > count and count > 0:
            last = rows[count - 1]
            next_cursor = Cursor(_aware(last.created_at), last.logical_id)
        return Page(items=items, total=int(total or 0), next_cursor=next_cursor)

    # -- helpers ---------------------------------------------------------------------------------

    def identifier_hash(self, system: str, value: str) -> str:
        return self.keyring.search_hash("identifier", f"{system}|{value}")

    def _patient_hash(self, ssin: str | None) -> str | None:
        return None if not ssin else self.keyring.search_hash("ssin", ssin)

    def _decrypt(self, row: Any) -> StoredVersion:
        body = self.keyring.decrypt(
            row.body, associated_data(row.resource_type, row.logical_id, row.version_id)
        )
        return StoredVersion(
            resource_type=row.resource_type,
            logical_id=row.logical_id,
            version_id=row.version_id,
            last_updated=_aware(row.last_updated),
            deleted=row.deleted,
            body=body,
            status=row.status,
            author_nihdi=row.author_nihdi,
        )


class IdentifierTaken(Conflict):
    """A business identifier (RID, or the client's own id) already belongs to another resource."""

    def __init__(self, resource_type: str) -> None:
        super().__init__(
            f"an identifier of this {resource_type} is already used by another {resource_type}",
            expression=f"{resource_type}.identifier",
        )
