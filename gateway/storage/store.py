"""``ResourceStore``: the one door to stored resources (versions, encryption, search columns).

Routes and services never query tables themselves. The store flushes, never commits: the request's
session (``gateway.db.get_session``) commits once, so a change and what records it land together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import BadRequest, Conflict, Gone, NotFound, PreconditionFailed
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.direct import DirectStatement
from gateway.storage.filters import access_conditions, in_range, state_condition
from gateway.storage.persons import nihdi_condition
from gateway.storage.records import (
    COLUMN_NAMES,
    NEWEST_FIRST,
    Access,
    Criteria,
    Cursor,
    Page,
    Paging,
    Range,
    SearchColumns,
    Sort,
    StoredVersion,
    aware,
    columns_of_row,
    utc_now,
)
from gateway.storage.tables import resource_identifiers, resource_versions

__all__ = [
    "NEWEST_FIRST",
    "Access",
    "Criteria",
    "Cursor",
    "IdentifierTaken",
    "Page",
    "Paging",
    "Range",
    "ResourceStore",
    "SearchColumns",
    "Sort",
    "StoredVersion",
]

rv = resource_versions
ri = resource_identifiers
_now = utc_now
_aware = aware


class ResourceStore:
    def __init__(self, session: AsyncSession, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring
        # A request names one patient (or a few) several times: the version's column, the facts,
        # the search: each SSIN is hashed once per request (one store per request).
        self._ssin_hashes: dict[str, str] = {}

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
        same_identifiers: bool = False,
    ) -> StoredVersion:
        """Write a new version if, and only if, ``expected_version`` is still current.
        ``same_identifiers``: the caller keeps the resource's business identifiers (a state
        change), so their tokens stay as they are.

        Compare-and-set on ``version_id``: of two writers racing from the same version exactly one
        wins, on SQLite (one writer at a time) and on PostgreSQL (the loser's UPDATE waits for the
        winner's row lock, then matches no row).
        """
        result = await self.session.execute(
            _RETIRE,
            {"b_type": resource_type, "b_id": logical_id, "b_version": expected_version},
        )
        replaced = result.first()
        if replaced is None:
            current = await self.read(resource_type, logical_id)  # 404/410 when it is not there
            raise PreconditionFailed(
                f"version {expected_version} is not current (current is {current.version_id})"
            )
        stored = await self._insert_version(
            resource_type,
            logical_id,
            expected_version + 1,
            _now(),
            _aware(replaced.created_at),  # version 1's time, copied to every version
            resource,
            columns,
        )
        if same_identifiers:
            return stored
        await self.session.execute(
            resource_identifiers.delete().where(
                resource_identifiers.c.resource_type == resource_type,
                resource_identifiers.c.logical_id == logical_id,
            )
        )
        await self._write_tokens(resource_type, logical_id, columns.identifiers)
        return stored

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
        await _INSERT_VERSION.execute(
            self.session,
            {
                "resource_type": resource_type,
                "logical_id": logical_id,
                "version_id": version_id,
                "is_current": True,
                "deleted": False,
                "last_updated": now,
                "created_at": created_at,
                "key_id": self.keyring.key_id,
                "body": blob,
                "patient_hmac": self._patient_hash(columns.patient_ssin),
                **{name: getattr(columns, name) for name in COLUMN_NAMES},
            },
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
            columns=_without_patient(columns),
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
        # ON CONFLICT DO NOTHING instead of a savepoint: a taken token shows as a missing row, the
        # transaction stays usable, and the common case costs one statement, not three.
        written = await _TOKENS.execute_each(self.session, rows)
        if len(written) != len(rows):
            # Undo the tokens this attempt did write, so a retry (a new RID) starts clean.
            await self.session.execute(
                resource_identifiers.delete().where(
                    resource_identifiers.c.resource_type == resource_type,
                    resource_identifiers.c.logical_id == logical_id,
                )
            )
            raise IdentifierTaken(resource_type)

    # -- reading ---------------------------------------------------------------------------------

    async def read(self, resource_type: str, logical_id: str) -> StoredVersion:
        params = {"resource_type": resource_type, "logical_id": logical_id}
        rows = await _READ_NEWEST.execute(self.session, params)
        row = rows[0] if rows else None
        if row is None or not row.is_current:
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
        self,
        resource_type: str,
        criteria: Criteria,
        *,
        count: int,
        cursor: Cursor | None = None,
        sort: Sort = NEWEST_FIRST,
        with_total: bool = True,
    ) -> Page:
        """A page of current versions matching ``criteria`` in ``sort`` order, after ``cursor``,
        and the number of all matches (``with_total``; FHIR ``_total``): access conditions are
        part of ``criteria``, so the count and the paging see only what the caller may."""
        if criteria.identifier is not None:
            return await self._by_identifier(resource_type, criteria, count)
        if cursor is not None and cursor.sort != sort:
            raise BadRequest("the paging cursor belongs to another _sort", expression="_cursor")
        where = self._where(resource_type, criteria)
        source = self._source(criteria)
        total = None
        if with_total:
            counted = await self.session.scalar(
                select(func.count()).select_from(source).where(*where)
            )
            total = int(counted or 0)
        if count == 0:  # the total only (_summary=count, _count=0): no row is read
            return Page(items=[], total=total)
        column = _SORT_COLUMNS[sort.key]
        page_where = list(where)
        if cursor is not None:
            page_where.append(_after(column, cursor))
        direction = column.desc() if sort.descending else column.asc()
        if column.nullable:  # NULLS LAST only where a NULL can be: it keeps the index usable
            direction = direction.nulls_last()
        order = (direction, rv.c.logical_id.desc() if sort.descending else rv.c.logical_id.asc())
        rows = (
            await self.session.execute(
                select(rv).select_from(source).where(*page_where).order_by(*order).limit(count + 1)
            )
        ).all()
        items = [self._decrypt(row) for row in rows[:count]]
        next_cursor = None
        if len(rows) > count and count > 0:
            last = rows[count - 1]
            value = getattr(last, column.key)
            next_cursor = Cursor(
                _aware(value) if value is not None else None, last.logical_id, sort
            )
        return Page(items=items, total=total, next_cursor=next_cursor)

    async def page(self, resource_type: str, criteria: Criteria, paging: Paging) -> Page:
        """``search`` as a client's search parameters asked for it (``gateway.fhir.search.paging``)."""
        return await self.search(
            resource_type,
            criteria,
            count=paging.count,
            cursor=paging.cursor,
            sort=paging.sort,
            with_total=paging.with_total,
        )

    async def _by_identifier(self, resource_type: str, criteria: Criteria, count: int) -> Page:
        """A business identifier belongs to one resource of the type at most (its token is
        unique): the newest version of that resource that meets the criteria, kept if it is the
        current one. No count query, no paging; the rows found are the total."""
        assert criteria.identifier is not None
        token = self.identifier_hash(*criteria.identifier)
        rows: Sequence[Any]
        if replace(criteria, identifier=None, states_at=None) == Criteria():  # a scan: prebuilt
            params = {"resource_type": resource_type, "token_hmac": token}
            rows = await _BY_TOKEN.execute(self.session, params)
        else:
            where = self._where(resource_type, criteria, current=False)
            query = _newest(select(rv).select_from(self._source(criteria))).where(*where)
            rows = (await self.session.execute(query)).all()
        found = [row for row in rows if row.is_current]
        return Page(items=[self._decrypt(row) for row in found[:count]], total=len(found))

    def _where(
        self, resource_type: str, criteria: Criteria, *, current: bool = True
    ) -> list[ColumnElement[bool]]:
        where = [rv.c.resource_type == resource_type, rv.c.deleted.is_(False)]
        if current:
            where.append(rv.c.is_current.is_(True))
        if criteria.patient_ssin is not None:
            where.append(rv.c.patient_hmac == self._patient_hash(criteria.patient_ssin))
        if criteria.identifier is not None:
            # Joined (``_source``): the unique token finds the one resource, then its versions
            # by primary key (``_by_identifier``).
            where += [
                ri.c.resource_type == resource_type,
                ri.c.token_hmac == self.identifier_hash(*criteria.identifier),
            ]
        if criteria.statuses:
            where.append(rv.c.status.in_(criteria.statuses))
        where.extend(in_range(rv.c.authored_on, span) for span in criteria.authored)
        if criteria.author_nihdi is not None:
            where.append(nihdi_condition(rv.c.author_nihdi, criteria.author_nihdi))
        if criteria.categories:
            where.append(rv.c.category.in_(criteria.categories))
        if criteria.actor_nihdi is not None:
            where.append(nihdi_condition(rv.c.actor_nihdi, criteria.actor_nihdi))
        if criteria.own_relationships_of is not None:
            # [A] a provider sees its own relationships with the patient, not the others'
            # (consent.policy._on_consent_record): they reveal who else treats the patient.
            where.append(
                or_(
                    rv.c.category != "therapeutic-relationship",
                    nihdi_condition(rv.c.actor_nihdi, criteria.own_relationships_of),
                )
            )
        if criteria.based_on is not None:
            where.append(rv.c.based_on == criteria.based_on)
        if criteria.holder_hmac is not None:
            where.append(rv.c.holder_hmac == criteria.holder_hmac)
        if criteria.logical_ids:
            where.append(rv.c.logical_id.in_(criteria.logical_ids))
        where.extend(in_range(rv.c.last_updated, span) for span in criteria.last_updated)
        if criteria.states:
            at = criteria.states_at or _now()
            where.append(or_(false(), *(state_condition(s, at) for s in criteria.states)))
        if criteria.access is not None:
            access = criteria.access
            where.extend(access_conditions(access.filter, access.now, hidden=access.hidden))
        return where

    @staticmethod
    def _source(criteria: Criteria) -> FromClause:
        """What a search reads: the versions, joined to the identifier tokens when it searches
        by identifier (unique per type: one row per resource)."""
        if criteria.identifier is None:
            return rv
        return rv.join(
            ri, and_(ri.c.resource_type == rv.c.resource_type, ri.c.logical_id == rv.c.logical_id)
        )

    async def current_columns(
        self, resource_type: str, patient_ssin: str
    ) -> list[tuple[str, SearchColumns]]:
        """The search columns of a patient's current ``resource_type`` rows, bodies untouched
        (``gateway.access.facts`` builds the access decision's facts from them)."""
        params = {"resource_type": resource_type, "patient_hmac": self._patient_hash(patient_ssin)}
        rows = await _CURRENT_COLUMNS.execute(self.session, params)
        return [(row.logical_id, columns_of_row(row)) for row in rows]

    # -- helpers ---------------------------------------------------------------------------------

    def ssin_hash(self, ssin: str) -> str:
        """The keyed HMAC a person's SSIN is searched by (``patient_hmac``, ``holder_hmac``)."""
        found = self._ssin_hashes.get(ssin)
        if found is None:
            found = self._ssin_hashes[ssin] = self.keyring.search_hash("ssin", ssin)
        return found

    def identifier_hash(self, system: str, value: str) -> str:
        return self.keyring.search_hash("identifier", f"{system}|{value}")

    def _patient_hash(self, ssin: str | None) -> str | None:
        return None if not ssin else self.ssin_hash(ssin)

    def _decrypt(self, row: Any) -> StoredVersion:
        body = self.keyring.decrypt(
            row.body, associated_data(row.resource_type, row.logical_id, row.version_id), row.key_id
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
            columns=columns_of_row(row),
        )


def _newest(query: Select[Any]) -> Select[Any]:
    """The newest version first, one row: a lookup by id that only the primary key
    (resource_type, logical_id, version_id) serves. The current version is always the newest,
    and its ``is_current`` is checked on the row: with ``is_current`` in the WHERE clause,
    SQLite's planner took an (resource_type, is_current, ...) index and walked every current row
    of the type (bench/pharmacy.py: a read slowed from 0.4 to 4 ms between 300 and 3,000
    prescriptions)."""
    return query.order_by(rv.c.version_id.desc()).limit(1)


# The statements of the hot paths, built once (building an expression costs more CPU than running
# the cached compiled form): a version's insert, the compare-and-set that retires the current
# one, a read by id, a lookup by identifier token, a patient's facts. Those of a create and of a
# read by id or RID, which nearly every request runs, are sent to the driver directly
# (gateway.storage.direct).
_INSERT_VERSION: Final = DirectStatement(rv.insert())
_TOKENS: Final = DirectStatement(
    sqlite_insert(ri).on_conflict_do_nothing().returning(ri.c.token_hmac),
    postgresql=postgresql_insert(ri).on_conflict_do_nothing().returning(ri.c.token_hmac),
)
_RETIRE: Final = (
    update(rv)
    .where(
        rv.c.resource_type == bindparam("b_type"),
        rv.c.logical_id == bindparam("b_id"),
        rv.c.version_id == bindparam("b_version"),
        rv.c.is_current.is_(True),
    )
    .values(is_current=False)
    .returning(rv.c.created_at)
)
_READ_NEWEST: Final = DirectStatement(
    _newest(select(rv)).where(
        rv.c.resource_type == bindparam("resource_type"),
        rv.c.logical_id == bindparam("logical_id"),
    )
)
_BY_TOKEN: Final = DirectStatement(
    _newest(
        select(rv).select_from(
            rv.join(
                ri,
                and_(ri.c.resource_type == rv.c.resource_type, ri.c.logical_id == rv.c.logical_id),
            )
        )
    ).where(
        rv.c.resource_type == bindparam("resource_type"),
        rv.c.deleted.is_(False),
        ri.c.resource_type == bindparam("resource_type"),
        ri.c.token_hmac == bindparam("token_hmac"),
    )
)
_CURRENT_COLUMNS: Final = DirectStatement(
    select(rv.c.logical_id, *(rv.c[name] for name in COLUMN_NAMES)).where(
        rv.c.resource_type == bindparam("resource_type"),
        rv.c.is_current.is_(True),
        rv.c.deleted.is_(False),
        rv.c.patient_hmac == bindparam("patient_hmac"),
    )
)


def _without_patient(columns: SearchColumns) -> SearchColumns:
    return replace(columns, patient_ssin=None, identifiers=())


class IdentifierTaken(Conflict):
    """A business identifier (RID, or the client's own id) already belongs to another resource."""

    def __init__(self, resource_type: str) -> None:
        super().__init__(
            f"an identifier of this {resource_type} is already used by another {resource_type}",
            expression=f"{resource_type}.identifier",
        )


_SORT_COLUMNS: Final = {
    "created": rv.c.created_at,
    "authored": rv.c.authored_on,
    "last_updated": rv.c.last_updated,
}


def _after(column: Any, cursor: Cursor) -> ColumnElement[bool]:
    """The rows after ``cursor`` in its order: by value, then id; rows without a value sort last
    (``nulls_last``), so after one of them come only others without a value."""
    later = rv.c.logical_id < cursor.logical_id
    if not cursor.sort.descending:
        later = rv.c.logical_id > cursor.logical_id
    if cursor.value is None:
        return and_(column.is_(None), later)
    beyond = column < cursor.value if cursor.sort.descending else column > cursor.value
    after = or_(beyond, and_(column == cursor.value, later))
    return or_(after, column.is_(None)) if column.nullable else after
