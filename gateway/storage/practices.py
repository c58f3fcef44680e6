"""GMF practices: which general practitioners share a practice, and from when (domain RX-14).

Reference data the operator keeps (``gateway gmf ...``, ``gateway/access/gmf_cli.py``) and the
access decision reads (``gateway/access/facts.py``: the GPs sharing a practice with the caller).
A member is a person, the first eight digits of his NIHDI number (ID-7): he stays a member under
every competence code. A membership runs from ``since`` until it is ended (``until``, exclusive);
ended memberships stay, so that who was a member when can still be told. Nothing here is about a
patient: no SSIN, no health data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import NamedFromClause

from fhir_profiles.nihdi import Profession, parse_professional
from gateway.storage.direct import DirectStatement
from gateway.storage.records import aware
from gateway.storage.tables import gmf_members, gmf_practices

MAX_PRACTICE_ID = 64
MAX_NAME = 200


class PracticeError(ValueError):
    """An operator's request that cannot be done (the message is safe to print)."""


@dataclass(frozen=True)
class Membership:
    nihdi: str  # as the operator gave it
    person: str  # ID-7: the first eight digits
    since: datetime
    until: datetime | None  # exclusive; None: still a member

    def active_at(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


@dataclass(frozen=True)
class Practice:
    practice_id: str
    name: str
    members: tuple[Membership, ...]


def physician_person(nihdi: str) -> str:
    """The person behind a physician's NIHDI number (ID-7, ID-8: first digit 1); GMF practices
    gather general practitioners, who are physicians. The check digits are the caller's."""
    number = parse_professional(nihdi)
    if number is None or number.profession is not Profession.PHYSICIAN:
        raise PracticeError("a GMF member is a physician: an NIHDI number of 8 or 11 digits")
    return number.person


def _active(members: NamedFromClause, now: datetime | BindParameter[Any]) -> ColumnElement[bool]:
    return and_(members.c.since <= now, or_(members.c.until.is_(None), members.c.until > now))


_me, _them = gmf_members.alias("me"), gmf_members.alias("them")
# Built once and run on the driver (gateway.storage.direct): it runs with every search by patient
# a physician makes (gateway/access/facts.py; issue 18).
_COLLEAGUES: Final = DirectStatement(
    select(_them.c.person)
    .distinct()
    .select_from(_me.join(_them, _me.c.practice_id == _them.c.practice_id))
    .where(
        _me.c.person == bindparam("person"),
        _active(_me, bindparam("now")),
        _active(_them, bindparam("now")),
    )
)


class GmfPractices:
    """The practices and their members, in the caller's session (the caller commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def colleagues(self, nihdi: str, now: datetime) -> frozenset[str]:
        """The persons sharing a practice with the physician ``nihdi`` at ``now``, himself
        included when he is a member (RX-14); empty for a number that names no physician."""
        number = parse_professional(nihdi)
        if number is None:
            return frozenset()
        params = {"person": number.person, "now": now}
        return frozenset(row.person for row in await _COLLEAGUES.execute(self.session, params))

    async def add_practice(self, practice_id: str, name: str, now: datetime) -> bool:
        """Register a practice; False when it exists already (its name is then left alone)."""
        if not practice_id or len(practice_id) > MAX_PRACTICE_ID or not practice_id.isprintable():
            raise PracticeError(f"a practice id has 1 to {MAX_PRACTICE_ID} printable characters")
        if not name.strip() or len(name) > MAX_NAME:
            raise PracticeError(f"a practice name has 1 to {MAX_NAME} characters")
        if await self._exists(practice_id):
            return False
        await self.session.execute(
            insert(gmf_practices).values(
                practice_id=practice_id, name=name.strip(), created_at=aware(now)
            )
        )
        return True

    async def add_member(self, practice_id: str, nihdi: str, since: datetime) -> bool:
        """Make the physician ``nihdi`` a member from ``since``; False when he is a member at
        ``since`` already (nothing changes)."""
        person = physician_person(nihdi)
        since = aware(since)
        if not await self._exists(practice_id):
            raise PracticeError(f"no practice {practice_id}: add it first (gmf add-practice)")
        current = [m for m in await self._members(practice_id) if m.person == person]
        if any(m.active_at(since) or (m.until is None and m.since > since) for m in current):
            return False
        await self.session.execute(
            insert(gmf_members).values(
                practice_id=practice_id, person=person, nihdi=nihdi, since=since, until=None
            )
        )
        return True

    async def remove_member(self, practice_id: str, nihdi: str, now: datetime) -> bool:
        """End the physician's membership at ``now``; False when he is no member (any more)."""
        person = physician_person(nihdi)
        now = aware(now)
        ended = await self.session.execute(
            update(gmf_members)
            .where(
                gmf_members.c.practice_id == practice_id,
                gmf_members.c.person == person,
                or_(gmf_members.c.until.is_(None), gmf_members.c.until > now),
            )
            .values(until=now)
        )
        return bool(ended.rowcount)  # type: ignore[attr-defined]

    async def practices(self) -> list[Practice]:
        """Every practice with its members, current and past, in id order."""
        rows = (
            await self.session.execute(select(gmf_practices).order_by(gmf_practices.c.practice_id))
        ).all()
        return [
            Practice(row.practice_id, row.name, tuple(await self._members(row.practice_id)))
            for row in rows
        ]

    async def _exists(self, practice_id: str) -> bool:
        found = await self.session.scalar(
            select(gmf_practices.c.practice_id).where(gmf_practices.c.practice_id == practice_id)
        )
        return found is not None

    async def _members(self, practice_id: str) -> list[Membership]:
        rows = (
            await self.session.execute(
                select(gmf_members)
                .where(gmf_members.c.practice_id == practice_id)
                .order_by(gmf_members.c.person, gmf_members.c.since)
            )
        ).all()
        return [
            Membership(
                row.nihdi,
                row.person,
                aware(row.since),
                aware(row.until) if row.until is not None else None,
            )
            for row in rows
        ]
