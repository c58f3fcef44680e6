"""``gateway serve``'s server processes: a drain before uvicorn's own graceful shutdown, and the
start-up heap kept out of the garbage collector's way (docs/operations.md).

Kept apart from the app and light to import (uvicorn and the standard library only): uvicorn's
supervisor spawns each worker with its ``Process`` object, so this module is imported in the
worker before it answers its supervisor's first health ping.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import time
from types import FrameType
from typing import Any, Final

import uvicorn
from uvicorn.supervisors import multiprocess

log = logging.getLogger("uvicorn.error")


class Drain:
    """Whether this process is draining: SIGTERM arrived, it serves what reaches it on the
    connections it has and takes no new ones (``DrainingServer``)."""

    def __init__(self) -> None:
        self.active = False


DRAIN: Final = Drain()  # one per process, as the signal that starts it


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain before its graceful shutdown (docs/operations.md).

    On the first SIGTERM or SIGINT it stops listening at once, so the proxy's new connections
    are refused and go to another instance (a refused connection carried no request: nginx
    passes even a POST on), and ``/readyz`` answers 503. It keeps serving the connections it
    has, each answer closing its own, for ``drain_seconds``: longer than the proxy keeps an idle
    upstream connection (nginx ``keepalive_timeout 4s``), so that none is left for a request to
    race the close. Then uvicorn's own shutdown lets the requests in flight finish. Closing idle
    keep-alive connections at once instead (uvicorn's default) fails a POST the proxy had just
    sent on one with a 502."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.exit_at: float | None = None
        self.exit_signal: int = signal.SIGTERM

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything built so far (modules, the app, its clients) lives as long as the process:
        # frozen, it is no longer walked by each full collection, which stopped a worker for
        # 130-160 ms every few seconds under load (issue 18; bench/README.md, "search").
        gc.freeze()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.exit_at is not None or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self.exit_signal = sig
        self.exit_at = time.monotonic() + self.drain_seconds  # on_tick starts the drain

    async def on_tick(self, counter: int) -> bool:
        if self.exit_at is not None and not DRAIN.active:
            DRAIN.active = True
            for server in self.servers:
                server.close()  # stop listening; open connections stay
            log.info("Draining for %.1f s before shutting down", self.drain_seconds)
        if self.exit_at is not None and time.monotonic() >= self.exit_at and not self.should_exit:
            super().handle_exit(self.exit_signal, None)
        return await super().on_tick(counter)


class DrainingWorker(multiprocess.Process):
    """A worker process of uvicorn's supervisor that runs a ``DrainingServer``. The drain is an
    attribute of the instance, which is what the spawned process receives."""

    seconds: float = 0.0  # set by ``serve`` in the supervisor before any worker starts

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.drain_seconds = type(self).seconds
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config, self.drain_seconds)
        return self._server


class DrainingSupervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, which on SIGTERM first closes its own copy of the listening socket:
    else the kernel would keep queueing connections that no draining worker takes."""

    def handle_term(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().handle_term()


def serve(app: str, *, drain_seconds: float, **options: Any) -> None:
    """``gateway serve``: each process runs a ``DrainingServer`` (a drain after SIGTERM when
    ``drain_seconds`` is above 0, else uvicorn's own shutdown), one alone or several under
    uvicorn's supervisor (which makes its workers with its module's ``Process``)."""
    config = uvicorn.Config(app, **options)
    if config.workers <= 1:
        server = DrainingServer(config, drain_seconds)
        server.run()
        if not server.started:
            raise SystemExit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits
        return
    DrainingWorker.seconds = drain_seconds
    multiprocess.Process = DrainingWorker  # type: ignore[misc]
    DrainingSupervisor(config, sockets=[config.bind_socket()]).run()
