"""Fault injection, as the mock funds do it (``mutualities/faults.py``): latency, 503 answers, a
connection closed without an answer, being down.

:class:`FaultInjection` is the outermost ASGI layer, so it sees uvicorn's ``send`` and can close
the TCP connection itself. Faults apply to the register's questions (``POST /checks``) and never
to ``/admin/...`` or ``/healthz``, so a test can always reach the switches. Random draws come from
one ``random.Random`` seeded from ``--seed``: the same requests in the same order meet the same
faults.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger("national_register.faults")


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: int = 0
    """Delay before a question is handled (it is still handled afterwards)."""
    error_rate: float = 0.0
    """Share of questions answered 503 at once."""
    drop_rate: float = 0.0
    """Share of questions whose connection is closed without an answer."""
    down: bool = False
    """Every question: the connection is closed at once, without an answer."""


class FaultUpdate(BaseModel):
    """Body of ``POST /admin/faults``: the fields given replace the current ones."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    drop_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    down: bool | None = None
    seed: int | None = None
    reset_counters: bool = False


class FaultState:
    def __init__(self, settings: FaultSettings, seed: int | None) -> None:
        self.settings = settings
        self.counters: Counter[str] = Counter()
        self._rng = random.Random(f"{seed}:register") if seed is not None else random.Random()

    def apply(self, update: FaultUpdate) -> None:
        changes = update.model_dump(exclude_none=True, exclude={"seed", "reset_counters"})
        self.settings = replace(self.settings, **changes)
        if update.seed is not None:
            self._rng = random.Random(f"{update.seed}:register")
        if update.reset_counters:
            self.counters.clear()

    def draw(self) -> tuple[bool, bool]:
        """(answer 503, drop the connection), both drawn on every question."""
        error, drop = self._rng.random(), self._rng.random()
        return error < self.settings.error_rate, drop < self.settings.drop_rate

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.settings.latency_ms,
            "error_rate": self.settings.error_rate,
            "drop_rate": self.settings.drop_rate,
            "down": self.settings.down,
            "counters": {
                key: self.counters[key] for key in ("requests", "unavailable", "dropped", "down")
            },
        }


class ConnectionDropped(Exception):
    """Raised where there is no socket to close (in-process ``httpx.ASGITransport``)."""


class FaultInjection:
    def __init__(self, app: ASGIApp, state: FaultState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/checks"):
            await self.app(scope, receive, send)
            return
        state = self.state
        state.counters["requests"] += 1
        if state.settings.down:
            state.counters["down"] += 1
            log.info("fault_injected", fault="down")
            await _drain(receive)
            await _drop_connection(send)
            return
        if state.settings.latency_ms:
            await asyncio.sleep(state.settings.latency_ms / 1000)
        unavailable, drop = state.draw()
        if unavailable:
            state.counters["unavailable"] += 1
            log.info("fault_injected", fault="unavailable")
            await _unavailable(send)
            return
        if drop:
            state.counters["dropped"] += 1
            log.info("fault_injected", fault="dropped")
            await _drain(receive)
            await _drop_connection(send)
            return
        await self.app(scope, receive, send)


async def _unavailable(send: Send) -> None:
    body = orjson.dumps(
        {"error": "UNAVAILABLE", "detail": "register unavailable (fault injection)"}
    )
    headers = [
        (b"content-type", b"application/json"),
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
    """Close the TCP connection without a byte of answer (see ``mutualities/faults.py``: under
    uvicorn ``send`` is bound to the request cycle, which holds the asyncio transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("fault injection: connection dropped")
    transport.close()
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
