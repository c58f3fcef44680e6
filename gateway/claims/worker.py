"""The claim worker: the forwarder and the settlement poller, as one unit to start and stop.

It runs in ``gateway worker`` (any number of processes on PostgreSQL) or as tasks inside the API
process (``GATEWAY_WORKER_IN_PROCESS``; by default on SQLite only: docs/claims.md). It owns one
``httpx.AsyncClient`` for the funds. Stopping lets the sends in flight finish; a process that is
killed instead leaves leases that expire, and its jobs are taken again.

The worker is not a request: its "now" is the clock it is given, ``app.state.clock`` in the API
process (read at each use, so a test that moves it moves the worker too), the system clock in
``gateway worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.access.guard import Clock
from gateway.claims.forwarder import Forwarder
from gateway.claims.funds import FundClient
from gateway.claims.poller import SettlementPoller
from gateway.settings import Settings
from gateway.storage.crypto import Keyring

log = structlog.get_logger("gateway.claims.worker")


def http_client(settings: Settings) -> httpx.AsyncClient:
    # One connection pool for every fund: enough keep-alive connections for every slot.
    slots = settings.worker_concurrency * max(1, len(settings.mutuality_urls)) + 4
    return httpx.AsyncClient(
        timeout=settings.claim_send_timeout_seconds,
        limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots),
        follow_redirects=False,
    )


class ClaimWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        *,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or http_client(settings)
        funds = FundClient(self.http, settings.mutuality_urls, settings.claim_send_timeout_seconds)
        self.forwarder = Forwarder(sessions, keyring, settings, funds, clock=clock)
        self.poller = SettlementPoller(sessions, keyring, settings, funds, clock=clock)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def nudge(self) -> None:
        self.forwarder.nudge()

    async def start(self) -> None:
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.forwarder.run(), name="claim-forwarder"),
            asyncio.create_task(self._poll_settlements(), name="claim-settlements"),
        ]
        log.info(
            "claim_worker_started", worker=self.name, funds=sorted(self.settings.mutuality_urls)
        )

    async def _poll_settlements(self) -> None:
        while not self._stop.is_set():
            await self.poller.poll_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), timeout=self.settings.settlement_poll_seconds
                )

    async def stop(self) -> None:
        self._stop.set()
        self.forwarder.stop()
        if self._tasks:
            _, pending = await asyncio.wait(
                self._tasks, timeout=self.settings.claim_send_timeout_seconds + 10
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_http:
            await self.http.aclose()
        log.info("claim_worker_stopped", worker=self.name)


async def run_until_signalled(worker: ClaimWorker) -> None:
    """``gateway worker``: run until SIGINT or SIGTERM, then stop cleanly."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await worker.start()
    try:
        await stopping.wait()
    finally:
        await worker.stop()
