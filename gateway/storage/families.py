"""Family links: who is a parent of whom, from when (domain PO-3).

A parent acts for his child while the child is under 12 (``consent._predicates``
``is_parent_of_young_child``). In Belgium the link comes from the National Register's household
composition; here the operator keeps it (``gateway family ...``, ``gateway/access/family_cli.py``)
and the access decision reads it (``gateway/access/facts.py``). Both people are stored as keyed
hashes of their SSIN, like every patient column: a link found is a link between the two numbers
asked about, and nothing here can list whose children are whose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin
from gateway.storage.crypto import Keyring
from gateway.storage.records import aware
from gateway.storage.tables import family_links


class FamilyError(ValueError):
    """An operator's request that cannot be done (the message is safe to print: no SSIN)."""


@dataclass(frozen=True)
class Link:
    since: datetime
    until: datetime | None  # exclusive; None: still linked

    def active_at(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


class FamilyLinks:
    """The links, in the caller's session (the caller commits)."""

    def __init__(self, session: AsyncSession, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring

    def _hash(self, ssin: str, role: str) -> str:
        digits = normalise_ssin(ssin)
        if not is_valid_ssin(digits):
            raise FamilyError(f"the {role} is not a valid national register or BIS number")
        return self.keyring.search_hash("ssin", digits)  # the patient columns' hash (ID-1)

    async def links(self, parent: str, child: str) -> list[Link]:
        """Every link, past and present, between ``parent`` and ``child``."""
        query = (
            select(family_links.c.since, family_links.c.until)
            .where(
                family_links.c.child_hmac == self._hash(child, "child"),
                family_links.c.parent_hmac == self._hash(parent, "parent"),
            )
            .order_by(family_links.c.since)
        )
        rows = (await self.session.execute(query)).all()
        return [Link(aware(row.since), aware(row.until) if row.until else None) for row in rows]

    async def link(self, parent: str, child: str, since: datetime) -> bool:
        """Link ``parent`` to ``child`` from ``since``; False when linked then already."""
        if normalise_ssin(parent) == normalise_ssin(child):
            raise FamilyError("a person is not his own parent")
        since = aware(since)
        current = await self.links(parent, child)
        if any(
            link.active_at(since) or (link.until is None and link.since > since) for link in current
        ):
            return False
        await self.session.execute(
            insert(family_links).values(
                child_hmac=self._hash(child, "child"),
                parent_hmac=self._hash(parent, "parent"),
                since=since,
                until=None,
            )
        )
        return True

    async def unlink(self, parent: str, child: str, now: datetime) -> bool:
        """End the link at ``now``; False when there is none (any more)."""
        now = aware(now)
        ended = await self.session.execute(
            update(family_links)
            .where(
                family_links.c.child_hmac == self._hash(child, "child"),
                family_links.c.parent_hmac == self._hash(parent, "parent"),
                family_links.c.since <= now,
                or_(family_links.c.until.is_(None), family_links.c.until > now),
            )
            .values(until=now)
        )
        return bool(getattr(ended, "rowcount", 0))

    async def parent_links(self, child_hmac: str, parent_hmac: str) -> list[Link]:
        """The links of two people already hashed (the facts loader's form)."""
        query = select(family_links.c.since, family_links.c.until).where(
            and_(family_links.c.child_hmac == child_hmac, family_links.c.parent_hmac == parent_hmac)
        )
        rows = (await self.session.execute(query)).all()
        return [Link(aware(row.since), aware(row.until) if row.until else None) for row in rows]
