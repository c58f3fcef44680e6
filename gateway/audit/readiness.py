"""Whether this process's audit writer can take records: the ``audit`` check of ``/readyz``.

A request is answered only once its audit record is stored (SEC-5), so an instance whose writer
cannot write must not take requests. Today records are appended in each request's own
transaction, so the writer is ready when the chain head it appends after can be read; a writer
running as a task of its own answers here whether that task is alive.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.storage.tables import audit_chain_head


async def writer_ready(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        await session.execute(select(audit_chain_head.c.seq).limit(1))
    return True
