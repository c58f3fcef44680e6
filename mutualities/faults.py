"""Fault injection per fund: latency, 503 answers, a connection dropped after commit, being down.

:class:`FaultInjection` is the outermost ASGI layer (outside FastAPI's own error middleware), so it
sees uvicorn's ``send`` and can close the TCP connection itself. Faults apply to a fund's business
endpoints (``/funds/{code}/...``) and never to ``/funds/{code}/admin/...``, ``/admin/...`` or
``/healthz``, so a test can always reach the switches. Random draws come from one
``random.Random`` per fund, seeded from ``--seed`` and the fund code: the same requests in the same
order meet the same faults.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualities.errors import ProtocolError
from mutualities.responses import FHIR_JSON, operation_outcome

log = structlog.get_logger("mutualities.faults")

_FUND_PATH = re.compile(r"^/funds/([^/]+)(/.*)?$")


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: int = 0
    """Delay before the fund handles a request (the request is still handled afterwards)."""
    error_rate: float = 0.0
    """Share of requests answered 503 at once, before anything is read or stored."""
    drop_after_commit_rate: float = 0.0
    """Share of POSTs handled and committed whose connection is then closed without an answer."""
    down: bool = False
    """Every request: the connection is closed at once, without an answer and without handling."""


class FaultUpdate(BaseModel):
    """Body of ``POST /admin/faults``: the fields given replace the current ones."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    drop_after_commit_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    down: bool | None = None
    seed: int | None = None
    """Reseed the fund's random draws (deterministic from here on)."""
    reset_counters: bool = False


class FaultState:
    """The faults of one fund, its random draws and what it injected so far."""

    def __init__(self, fund: str, settings: FaultSettings, seed: int | None) -> None:
        self.fund = fund
        self.settings = settings
        self.counters: Counter[str] = Counter()
        self._rng = random.Random()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        # A str seed is hashed with SHA-512: the same across runs, whatever PYTHONHASHSEED says.
        self._rng = random.Random(f"{seed}:{self.fund}") if seed is not None else random.Random()

    def apply(self, update: FaultUpdate) -> None:
        changes = update.model_dump(exclude_none=True, exclude={"seed", "reset_counters"})
        self.settings = replace(self.settings, **changes)
        if update.seed is not None:
            self.reseed(update.seed)
        if update.reset_counters:
            self.counters.clear()

    def draw(self) -> tuple[bool, bool]:
        """(answer 503, drop after commit). Both are drawn on every request so that one rate does
        not shift the other's sequence."""
        error, drop = self._rng.random(), self._rng.random()
        return error < self.settings.error_rate, drop < self.settings.drop_after_commit_rate

    def snapshot(self) -> dict[str, Any]:
        return {
            "fund": self.fund,
            "latency_ms": self.settings.latency_ms,
            "error_rate": self.settings.error_rate,
            "drop_after_commit_rate": self.settings.drop_after_commit_rate,
            "down": self.settings.down,
            "counters": {
                key: self.counters[key]
                for key in ("requests", "unavailable", "dropped_after_commit", "down")
            },
        }


class ConnectionDropped(Exception):
    """Raised where there is no socket to close (in-process ``httpx.ASGITransport``): the client sees
    an exception instead of an answer, as it would see a connection error over TCP."""


class FaultInjection:
    def __init__(self, app: ASGIApp, faults: Mapping[str, FaultState]) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._state_for(scope)
        if state is None:
            await self.app(scope, receive, send)
            return
        state.counters["requests"] += 1
        if state.settings.down:
            state.counters["down"] += 1
            log.info("fault_injected", fund=state.fund, fault="down")
            # Read the request first: closing a socket with unread data sends a reset, not a FIN,
            # and the client would see a different error from one run to the next.
            await _drain(receive)
            await _drop_connection(send)
            return
        if state.settings.latency_ms:
            await asyncio.sleep(state.settings.latency_ms / 1000)
        unavailable, drop = state.draw()
        if unavailable:
            state.counters["unavailable"] += 1
            log.info("fault_injected", fund=state.fund, fault="unavailable")
            await _unavailable(send)
            return
        if drop and scope["method"] == "POST":
            # The nasty case: the fund handles the request and commits, the caller never hears.
            async def swallow(message: Message) -> None:
                pass

            await self.app(scope, receive, swallow)
            state.counters["dropped_after_commit"] += 1
            log.info("fault_injected", fund=state.fund, fault="dropped_after_commit")
            await _drop_connection(send)
            return
        await self.app(scope, receive, send)

    def _state_for(self, scope: Scope) -> FaultState | None:
        if scope["type"] != "http":
            return None
        match = _FUND_PATH.match(scope["path"])
        if match is None or (match.group(2) or "").startswith("/admin"):
            return None
        return self.faults.get(match.group(1))


async def _unavailable(send: Send) -> None:
    body = operation_outcome(
        ProtocolError.UNAVAILABLE, "transient", "Fund unavailable (fault injection)"
    )
    headers = [
        (b"content-type", FHIR_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _drop_connection(send: Send) -> None:
    """Close the client's TCP connection without a byte of answer.

    ASGI has no message for this. Under uvicorn, ``send`` is a bound method of the request cycle,
    which holds the asyncio transport: closing it sends a FIN, and the client sees "server
    disconnected without sending a response". We then wait until uvicorn has noticed the lost
    connection, so that it does not try to write a 500 of its own.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("fault injection: connection dropped")
    transport.close()
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
