"""HTTP/1.1 keep-alive load generator, run as its own process by ``bench.harness.run_load``.

``python -m bench.loadgen < spec.json`` reads a ``LoadSpec`` as JSON and prints a JSON summary.

Two modes:

* ``closed``: ``connections`` workers, each sends, waits for the answer, sends again. Throughput
  counts answers that arrive inside the measured window (after ``warmup``, for ``duration``).
* ``open``: request *i* is due at ``start + i / rate`` whatever happened before (wrk2 style). A
  free connection sends it at, or as soon as possible after, that time, and its latency is measured
  from the due time, so a server that falls behind shows its queueing delay instead of hiding it
  (no coordinated omission). ``send_lag_ms`` reports how late the generator itself sent.

Clients: ``raw`` (default) writes pre-built request bytes on asyncio streams and parses just the
status line and Content-Length: a few tens of microseconds of CPU a request, which matters on a
2-core machine. ``httpx`` uses ``httpx.AsyncClient`` (HTTP/1.1 keep-alive) for comparison.
Both run on uvloop when it is installed. CPU used by this process, by the server process and by
the whole machine during the window is reported, so noise from other work is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_CONNECT_RETRY_PAUSE_S = 0.1


@dataclass
class LoadSpec:
    host: str
    port: int
    path: str
    bodies: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "closed"  # "closed" or "open"
    connections: int = 16
    rate: float = 500.0  # open mode only: requests per second
    duration: float = 10.0
    warmup: float = 2.0
    expect_status: int = 201
    client: str = "raw"  # "raw" or "httpx"
    server_pid: int | None = None
    timeout: float = 10.0


# -- one keep-alive connection, raw asyncio streams ----------------------------------------------


class RawConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, payload: bytes) -> int:
        """Send one pre-built request and read its whole answer; return the status code."""
        try:
            return await self._exchange(payload)
        except BaseException:
            self.close()  # a timeout or error leaves the stream in an unknown state
            raise

    async def _exchange(self, payload: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            await self.reader.readexactly(int(head[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            await self._read_chunked()
        else:  # no framing: the body ends when the server closes
            await self.reader.read()
            self.close()
            return status
        if b"\r\nconnection: close" in lower:
            self.close()
        return status

    async def _read_chunked(self) -> None:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return


def build_requests(spec: LoadSpec) -> list[bytes]:
    """One complete HTTP/1.1 request (head and body) per body, built once. An empty ``path``
    means GETs: each "body" is then a path with its query."""
    if not spec.path:
        head = [f"Host: {spec.host}:{spec.port}"] + [f"{k}: {v}" for k, v in spec.headers.items()]
        return [
            ("\r\n".join([f"GET {path} HTTP/1.1", *head]) + "\r\n\r\n").encode("latin-1")
            for path in spec.bodies
        ]
    built = []
    for body in spec.bodies:
        data = body.encode()
        lines = [
            f"POST {spec.path} HTTP/1.1",
            f"Host: {spec.host}:{spec.port}",
            f"Content-Length: {len(data)}",
            *(f"{name}: {value}" for name, value in spec.headers.items()),
        ]
        built.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
    return built


# -- CPU accounting --------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state is index 0)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``gateway serve --workers N`` forks its workers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, all its threads and its live descendants."""
    if pid is None or _stat_fields(pid) is None:
        return None
    total = 0
    for member in process_tree(pid):
        if (fields := _stat_fields(member)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def _machine_cpu_s() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, summed over cores. Steal is
    time the hypervisor gave this VM's virtual CPUs to someone else: noise no process here shows."""
    try:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    values += [0] * (8 - len(values))
    busy = values[0] + values[1] + values[2] + values[5] + values[6]  # user nice system irq softirq
    return busy / _CLOCK_TICKS, values[7] / _CLOCK_TICKS


@dataclass
class CpuSnapshot:
    at: float
    own: float
    server: float | None
    machine: tuple[float, float] | None

    @classmethod
    def take(cls, server_pid: int | None) -> CpuSnapshot:
        return cls(
            time.perf_counter(), time.process_time(), _process_cpu_s(server_pid), _machine_cpu_s()
        )


def cpu_summary(first: CpuSnapshot, last: CpuSnapshot, answered: int) -> dict[str, float | None]:
    """CPU over the window; per request means per answer received inside the window. Clock-tick
    granularity (10 ms) makes the core figures good to about +-0.05."""
    wall = max(last.at - first.at, 1e-9)
    own = last.own - first.own
    server = None if first.server is None or last.server is None else last.server - first.server
    machine = steal = None
    if first.machine is not None and last.machine is not None:
        machine = last.machine[0] - first.machine[0]
        steal = last.machine[1] - first.machine[1]
    other = None if machine is None else machine - own - (server or 0.0)
    return {
        "client_cpu_ms_per_request": _round(own * 1000 / answered) if answered else None,
        "server_cpu_ms_per_request": (
            _round(server * 1000 / answered) if answered and server is not None else None
        ),
        "client_cores_busy": _round(own / wall),
        "server_cores_busy": None if server is None else _round(server / wall),
        "machine_cores_busy": None if machine is None else _round(machine / wall),
        # Everything else on the machine (other engineers' tests, the database server...).
        "other_cores_busy": None if other is None else _round(other / wall),
        "steal_cores": None if steal is None else _round(steal / wall),
    }


# -- statistics ------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    values = sorted(seconds)
    if not values:
        return dict.fromkeys(("p50", "p95", "p99", "max", "mean"))
    return {
        "p50": _round(percentile(values, 50) * 1000),
        "p95": _round(percentile(values, 95) * 1000),
        "p99": _round(percentile(values, 99) * 1000),
        "max": _round(values[-1] * 1000),
        "mean": _round(sum(values) / len(values) * 1000),
    }


def _round(value: float) -> float:
    return round(value, 3)


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Recorder:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    send_lags: list[float] = field(default_factory=list)
    last_end: float = 0.0
    # Answers that arrived inside the window, whichever request they answer: what the window's
    # CPU time is divided by (in open mode a late server answers earlier requests in the window).
    arrived_in_window: int = 0

    def answered(self, status: int, latency: float, end: float) -> None:
        self.statuses[str(status)] += 1
        self.latencies.append(latency)
        self.last_end = max(self.last_end, end)

    def failed(self, kind: str) -> None:
        self.statuses[kind] += 1


Send = Callable[[int], Awaitable[int]]


async def _client_senders(spec: LoadSpec, stack: contextlib.AsyncExitStack) -> list[Send]:
    """One ``send(request_index) -> status`` per worker, with its connection already open."""
    if spec.client == "httpx":
        import httpx

        client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=f"http://{spec.host}:{spec.port}",
                limits=httpx.Limits(
                    max_connections=spec.connections, max_keepalive_connections=spec.connections
                ),
                timeout=spec.timeout,
            )
        )
        bodies = [body.encode() for body in spec.bodies]

        async def send_httpx(index: int) -> int:
            response = await client.post(
                spec.path, content=bodies[index % len(bodies)], headers=spec.headers
            )
            return response.status_code

        return [send_httpx] * spec.connections

    if spec.client != "raw":
        raise ValueError(f"unknown client {spec.client!r}")
    requests = build_requests(spec)
    senders: list[Send] = []
    for _ in range(spec.connections):
        connection = RawConnection(spec.host, spec.port)
        await connection.open()
        stack.callback(connection.close)

        def send_raw(index: int, connection: RawConnection = connection) -> Awaitable[int]:
            return connection.request(requests[index % len(requests)])

        senders.append(send_raw)
    return senders


async def _send_one(send: Send, index: int, limit_s: float) -> int | str:
    """The status code, or the name of what went wrong (timeout, connection error...)."""
    try:
        async with asyncio.timeout(limit_s):
            return await send(index)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        return type(exc).__name__
    except TimeoutError:
        return "timeout"


async def run(spec: LoadSpec) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        senders = await _client_senders(spec, stack)
        start = time.perf_counter() + 0.05
        window_start = start + spec.warmup
        window_end = window_start + spec.duration
        recorder = Recorder()
        snapshots: list[CpuSnapshot] = []

        async def watch() -> None:
            for moment in (window_start, window_end):
                await asyncio.sleep(max(0.0, moment - time.perf_counter()))
                snapshots.append(CpuSnapshot.take(spec.server_pid))

        watcher = asyncio.create_task(watch())
        if spec.mode == "closed":
            await asyncio.gather(
                *(
                    _closed_worker(send, n, spec, start, window_start, window_end, recorder)
                    for n, send in enumerate(senders)
                )
            )
            not_sent = 0
        elif spec.mode == "open":
            not_sent = await _open_loop(senders, spec, start, window_start, window_end, recorder)
        else:
            raise ValueError(f"unknown mode {spec.mode!r}")
        await watcher

    answered = sum(n for kind, n in recorder.statuses.items() if kind.isdigit())
    ok = recorder.statuses.get(str(spec.expect_status), 0)
    if spec.mode == "closed":
        rate = answered / spec.duration
    else:  # answers to the requests due in the window, over the time they took to arrive
        rate = answered / max(recorder.last_end - window_start, spec.duration)
    result: dict[str, Any] = {
        "mode": spec.mode,
        "client": spec.client,
        "connections": spec.connections,
        "duration_s": spec.duration,
        "warmup_s": spec.warmup,
        "requests": sum(recorder.statuses.values()) + not_sent,
        "ok": ok,
        "errors": sum(recorder.statuses.values()) + not_sent - ok,
        "outcomes": dict(sorted(recorder.statuses.items())),
        "rate_per_s": _round(rate),
        "latency_ms": latency_summary(recorder.latencies),
    }
    if spec.mode == "open":
        result["offered_rate_per_s"] = spec.rate
        result["not_sent"] = not_sent
        result["send_lag_ms"] = {
            k: v
            for k, v in latency_summary(recorder.send_lags).items()
            if k in ("p50", "p99", "max")
        }
    if len(snapshots) == 2:
        result["cpu"] = cpu_summary(snapshots[0], snapshots[1], recorder.arrived_in_window)
    return result


async def _closed_worker(
    send: Send,
    offset: int,
    spec: LoadSpec,
    start: float,
    window_start: float,
    window_end: float,
    recorder: Recorder,
) -> None:
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    index = offset
    while (began := time.perf_counter()) < window_end:
        outcome = await _send_one(send, index, spec.timeout)
        index += spec.connections
        ended = time.perf_counter()
        if window_start <= ended <= window_end:
            if isinstance(outcome, int):
                recorder.answered(outcome, ended - began, ended)
                recorder.arrived_in_window += 1
            else:
                recorder.failed(outcome)
        if isinstance(outcome, str):
            await asyncio.sleep(_CONNECT_RETRY_PAUSE_S)


async def _open_loop(
    senders: list[Send],
    spec: LoadSpec,
    start: float,
    window_start: float,
    window_end: float,
    recorder: Recorder,
) -> int:
    """Send request i at start + i/rate; return how many due requests were never sent."""
    total = int(spec.rate * (spec.warmup + spec.duration))
    # A server far behind schedule is cut off here; what it never received counts as errors.
    give_up = window_end + max(5.0, spec.duration)
    next_index = 0
    not_sent = 0

    async def worker(send: Send) -> None:
        nonlocal next_index, not_sent
        while next_index < total:
            index = next_index
            next_index += 1
            due = start + index / spec.rate
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            sent = time.perf_counter()
            in_window = window_start <= due < window_end
            if sent > give_up:
                not_sent += in_window
                continue
            outcome = await _send_one(send, index, spec.timeout)
            ended = time.perf_counter()
            if isinstance(outcome, int) and window_start <= ended <= window_end:
                recorder.arrived_in_window += 1
            if not in_window:
                continue
            recorder.send_lags.append(max(0.0, sent - due))
            if isinstance(outcome, int):
                recorder.answered(outcome, ended - due, ended)
            else:
                recorder.failed(outcome)
                await asyncio.sleep(_CONNECT_RETRY_PAUSE_S)

    await asyncio.gather(*(worker(send) for send in senders))
    return not_sent


def main() -> None:
    spec = LoadSpec(**json.load(sys.stdin))
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(spec))
    result["spec"] = {k: v for k, v in asdict(spec).items() if k not in ("bodies", "headers")}
    json.dump(result, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
