"""Reading the audit log (``GET /fhir/AuditEvent``): newest first, keyset paging on ``seq``.

Only this module and ``writer`` touch the audit tables; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.writer import RESOURCE_TYPE
from gateway.errors import BadRequest, NotFound
from gateway.storage.crypto import Keyring, associated_data
from gateway.storage.filters import in_range
from gateway.storage.records import Cursor, Page, Range, StoredVersion, aware
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
        count: int,
        cursor: Cursor | None,
    ) -> Page:
        where = []
        if patient_ssin is not None:
            where.append(ae.c.patient_hmac == self.keyring.search_hash("ssin", patient_ssin))
        where.extend(in_range(ae.c.recorded_at, span) for span in recorded)
        total = await self.session.scalar(select(func.count()).select_from(ae).where(*where))
        page_where = list(where)
        if cursor is not None:
            if not cursor.logical_id.isdigit():
                raise BadRequest("invalid paging cursor", expression="_cursor")
            page_where.append(ae.c.seq < int(cursor.logical_id))
        rows = (
            await self.session.execute(
                select(ae).where(*page_where).order_by(ae.c.seq.desc()).limit(count + 1)
            )
        ).all()
        items = [self._event(row) for row in rows[:count]]
        next_cursor = None
        if len(rows) > count and count > 0:
            last = rows[count - 1]
            next_cursor = Cursor(aware(last.recorded_at), str(last.seq))
        return Page(items=items, total=int(total or 0), next_cursor=next_cursor)
