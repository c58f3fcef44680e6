"""Fault injection for a mock service: latency, 503 answers, connections closed without an answer,
being down.

:class:`FaultInjection` is the outermost ASGI layer (outside FastAPI's own error middleware), so it
sees uvicorn's ``send`` and can close the TCP connection itself. Each service says which requests
are faulted (never its ``/admin/...`` switches nor ``/healthz``, so a test can always reach them),
what its 503 body is, and what a dropped connection does (the register drops before handling, a
fund after committing). Random draws come from one ``random.Random`` per :class:`FaultState`,
seeded with the string ``"<seed>:<stream>"``: the same requests in the same order meet the same
faults.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger("mock_services.faults")


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: int = 0
    """Delay before a faulted request is handled (it is still handled afterwards)."""
    error_rate: float = 0.0
    """Share of requests answered 503 at once, before anything is read or stored."""
    drop_rate: float = 0.0
    """Share of requests whose connection is closed without an answer (when: the service's
    :data:`Drop`)."""
    down: bool = False
    """Every request: the connection is closed at once, without an answer and without handling."""


@dataclass(frozen=True)
class DropNames:
    """What a service calls its dropped connections in its admin API (and so in its CLI)."""

    rate: str = "drop_rate"
    counter: str = "dropped"


DROP_NAMES = DropNames()


class FaultUpdate(BaseModel):
    """Body of ``POST .../admin/faults``: the fields given replace the current ones. A service
    whose drop rate has another wire name subclasses this and aliases ``drop_rate``."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    drop_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    down: bool | None = None
    seed: int | None = None
    """Reseed the random draws (deterministic from here on)."""
    reset_counters: bool = False


class FaultState:
    """The faults of one faultable unit (the register, one fund), its draws and what it injected."""

    def __init__(
        self,
        settings: FaultSettings,
        seed: int | None,
        *,
        stream: str,
        labels: Mapping[str, str] | None = None,
        names: DropNames = DROP_NAMES,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.labels = dict(labels or {})
        """Shown first in the snapshot and on every log event (e.g. ``{"fund": "100"}``)."""
        self.names = names
        self.counters: Counter[str] = Counter()
        self._rng = random.Random()
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        # A str seed is hashed with SHA-512: the same across runs, whatever PYTHONHASHSEED says.
        self._rng = random.Random(f"{seed}:{self.stream}") if seed is not None else random.Random()

    def apply(self, update: FaultUpdate) -> None:
        changes = update.model_dump(exclude_none=True, exclude={"seed", "reset_counters"})
        self.settings = replace(self.settings, **changes)
        if update.seed is not None:
            self.reseed(update.seed)
        if update.reset_counters:
            self.counters.clear()

    def draw(self) -> tuple[bool, bool]:
        """(answer 503, drop). Both are drawn on every request so that one rate does not shift the
        other's sequence."""
        error, drop = self._rng.random(), self._rng.random()
        return error < self.settings.error_rate, drop < self.settings.drop_rate

    def snapshot(self) -> dict[str, Any]:
        counters = ("requests", "unavailable", self.names.counter, "down")
        return {
            **self.labels,
            "latency_ms": self.settings.latency_ms,
            "error_rate": self.settings.error_rate,
            self.names.rate: self.settings.drop_rate,
            "down": self.settings.down,
            "counters": {key: self.counters[key] for key in counters},
        }


class ConnectionDropped(Exception):
    """Raised where there is no socket to close (in-process ``httpx.ASGITransport``): the client sees
    an exception instead of an answer, as it would see a connection error over TCP."""


@dataclass(frozen=True)
class Unavailable:
    """The service's 503 answer (sent with ``Retry-After: 1``)."""

    media_type: str
    body: bytes


Drop = Callable[[ASGIApp, Scope, Receive, Send], Awaitable[bool]]
"""What a drawn drop does before the connection is closed: ``True`` to close it now; ``False``
when the request is not droppable and the callable has answered it normally instead."""


async def drop_unhandled(_app: ASGIApp, _scope: Scope, receive: Receive, _send: Send) -> bool:
    """The default drop: read the request, handle nothing (the caller hears nothing either)."""
    await drain(receive)
    return True


class FaultInjection:
    def __init__(
        self,
        app: ASGIApp,
        state_for: Callable[[Scope], FaultState | None],
        unavailable: Unavailable,
        drop: Drop = drop_unhandled,
    ) -> None:
        self.app = app
        self.state_for = state_for
        """The request's faults, ``None`` for a request that is never faulted."""
        self.unavailable = unavailable
        self.drop = drop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state_for(scope) if scope["type"] == "http" else None
        if state is None:
            await self.app(scope, receive, send)
            return
        state.counters["requests"] += 1
        if state.settings.down:
            state.counters["down"] += 1
            log.info("fault_injected", **state.labels, fault="down")
            # Read the request first: closing a socket with unread data sends a reset, not a FIN,
            # and the client would see a different error from one run to the next.
            await drain(receive)
            await drop_connection(send)
            return
        if state.settings.latency_ms:
            await asyncio.sleep(state.settings.latency_ms / 1000)
        unavailable, drop = state.draw()
        if unavailable:
            state.counters["unavailable"] += 1
            log.info("fault_injected", **state.labels, fault="unavailable")
            await self._unavailable(send)
            return
        if drop:
            if await self.drop(self.app, scope, receive, send):
                state.counters[state.names.counter] += 1
                log.info("fault_injected", **state.labels, fault=state.names.counter)
                await drop_connection(send)
            return
        await self.app(scope, receive, send)

    async def _unavailable(self, send: Send) -> None:
        body = self.unavailable.body
        headers = [
            (b"content-type", self.unavailable.media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive) -> None:
    """Read the request body to its end."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def drop_connection(send: Send) -> None:
    """Close the client's TCP connection without a byte of answer.

    ASGI has no message for this. Under uvicorn, ``send`` is a bound method of the request cycle,
    which holds the asyncio transport: closing it sends a FIN, and the client sees "server
    disconnected without sending a response". We then wait until uvicorn has noticed the lost
    connection, so that it does not try to write a 500 of its own. (Hence ``loop="asyncio"`` in
    :func:`mock_services.serve.start`.)
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
