"""Reading the audit log (``GET /fhir/AuditEvent``): newest first, keyset paging on ``seq``.

Only this module and ``writer`` touch the audit tables; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.writer import RESOURCE_TYPE
from gateway.errors import BadRequest, NotFound
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.filters import in_range
from gateway.storage.records import Cursor, Page, Paging, Range, StoredVersion, aware
from gateway.storage.tables import audit_events as ae


class AuditLog:
    def __init__(self, session: AsyncSession, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring

    def _event(self, row: Any) -> StoredVersion:
        body = self.keyring.decrypt(row.body, associated_data(RESOURCE_TYPE, row.event_id, 1))
        return StoredVersion(RESOURCE_TYPE, row.event_id, 1, aware(row.recorded_at), False, body)

    async def read(self, event_id: str) -> StoredVersion:
        row = (await self.session.execute(select(ae).where(ae.c.event_id == event_id))).first()
        if row is None:
            raise NotFound(f"{RESOURCE_TYPE}/{event_id[:64]} is not known")
        return self._event(row)

    async def search(
        self,
        *,
        patient_ssin: str | None,
        recorded: tuple[Range, ...],
        paging: Paging,
        event_ids: tuple[str, ...] = (),
    ) -> Page:
        """Events in the order they were recorded (the chain's sequence), newest first unless
        ``paging.sort`` is ascending (``_sort=date``)."""
        where: list[ColumnElement[bool]] = []
        if event_ids:
            where.append(ae.c.event_id.in_(event_ids))
        if patient_ssin is not None:
            where.append(ae.c.patient_hmac == self.keyring.search_hash("ssin", patient_ssin))
        where.extend(in_range(ae.c.recorded_at, span) for span in recorded)
        total = None
        if paging.with_total:
            total = await self.session.scalar(select(func.count()).select_from(ae).where(*where))
        page_where = list(where)
        cursor, descending = paging.cursor, paging.sort.descending
        if cursor is not None:
            if not cursor.logical_id.isdigit() or cursor.sort != paging.sort:
                raise BadRequest("invalid paging cursor", expression="_cursor")
            seq = int(cursor.logical_id)
            page_where.append(ae.c.seq < seq if descending else ae.c.seq > seq)
        order = ae.c.seq.desc() if descending else ae.c.seq.asc()
        count = paging.count
        rows = (
            await self.session.execute(
                select(ae).where(*page_where).order_by(order).limit(count + 1)
            )
        ).all()
        items = [self._event(row) for row in rows[:count]]
        next_cursor = None
        if len(rows) > count and count > 0:
            last = rows[count - 1]
            next_cursor = Cursor(aware(last.recorded_at), str(last.seq), paging.sort)
        return Page(
            items=items, total=None if total is None else int(total), next_cursor=next_cursor
        )
