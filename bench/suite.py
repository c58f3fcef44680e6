"""The hot-path scenarios of issue 18, each with one command, beside the bare and floor endpoints.

``python -m bench.suite <command>`` (bench/README.md, "suite"). Per database it starts, each in
its own process: the bare endpoint (``bench.bare_app``), the floor endpoint (``bench.floor_app``,
same database), and for each measured gateway (the working tree, or ``--git-ref`` commits, one
after the other on a fresh database) ``gateway serve [--workers N]`` with a prescriber and a
pharmacist client (real bearer tokens) and, for claims, the mock funds and the forwarder. Each
measurement runs on every target in turn (bare, floor, gateway), so the ratios come from one run.
Results: ``bench/results/suite-<command>.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import harness, workloads
from bench.claims import FUNDS, Ledger
from bench.patient_search import DatabaseCpu
from bench.workloads import GatewayClients, Workload

PREFIX = "suite"
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_suite"
PHARMACY_NIHDI = "06012345"
BASELINE = "4844c03"  # the commit before issue 18's work: the "before" of `compare`

# Per scenario: its measurements (mode, open-loop rate) and the targets.
MODES: dict[str, tuple[tuple[str, float | None], ...]] = {
    "create": (("closed", None), ("open", 500.0)),
    "fetch": (("closed", None), ("open", 500.0)),
    "search": (("open", 200.0),),
    "dispense": (("closed", None),),
    "claims": (("closed", None), ("open", 200.0)),
}
TARGETS: dict[str, dict[str, float]] = {
    "create": {"per_s": 1000.0, "p99_ms": 25.0, "cpu_ms": 1.0},
    "fetch": {"per_s": 2000.0, "p99_ms": 10.0},
    "search": {"p99_ms": 20.0},
    "dispense": {"per_s": 500.0},
    "claims": {"per_s": 500.0},
}
SQLITE_TARGETS = {"create": 500.0, "fetch": 1000.0}  # one process
FLOOR_SHARE = 0.5  # the gateway should reach at least half the floor's throughput


@dataclass(frozen=True)
class Command:
    scenarios: tuple[str, ...]
    databases: tuple[str, ...] = DATABASES
    workers: int | None = None  # None: the settings, 2 on PostgreSQL, 1 on SQLite
    refs: tuple[str | None, ...] = (None,)  # None: the working tree
    help: str = ""


COMMANDS: dict[str, Command] = {
    "create": Command(("create",), help="create, closed loop (16) and open loop at 500/s"),
    "fetch": Command(("fetch",), help="fetch by RID, closed loop and open loop at 500/s"),
    "search": Command(("search",), help="patient search (10 prescriptions), open loop 200/s"),
    "dispense": Command(("dispense",), help="dispense, closed loop"),
    "claims": Command(("claims",), help="claim intake, closed and open 200/s, with the backlog"),
    "sqlite": Command(("create", "fetch"), ("sqlite",), help="create and fetch on SQLite"),
    "workers": Command(
        ("create", "fetch"), ("postgresql",), workers=2, help="gateway serve --workers 2 on PG"
    ),
    "compare": Command(
        ("create", "fetch", "search", "dispense", "claims"),
        refs=(BASELINE, "HEAD"),
        help=f"before/after: {BASELINE} and HEAD in one run",
    ),
}


# -- the servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def references(
    name: str, url: str, workdir: Path, opts: argparse.Namespace, key: str
) -> Iterator[dict[str, harness.Server]]:
    """The bare and floor endpoints (the floor on the run's database, tables of its own)."""
    from bench import floor_app

    floor_url = f"sqlite:///{workdir / 'floor.db'}" if name == "sqlite" else url
    floor_app.prepare(floor_url)
    floor_port = harness.free_port()
    floor_argv = [sys.executable, "-m", "bench.floor_app", "--port", str(floor_port)]
    floor_argv += ["--database-url", floor_url, f"--key={key}", "--workers", str(opts.workers)]
    with (
        harness.bare_endpoint(workdir) as bare,
        harness.running(
            "floor", floor_argv, port=floor_port, ready_path="/healthz", log_dir=workdir
        ) as floor,
    ):
        yield {"bare": bare, "floor": floor}


@dataclass
class Provisioned:
    """A migrated gateway database with the benchmark's clients, ready to be served."""

    name: str
    source: harness.GatewaySource
    workdir: Path
    env: dict[str, str]
    port: int
    funds_port: int
    prescriber: Any
    pharmacist: Any


def provision(
    name: str, url: str, workdir: Path, source: harness.GatewaySource, claims: bool
) -> Provisioned:
    """Migrate ``url`` and register a prescriber and a pharmacist client (real commands); with
    ``claims``, point the gateway at the mock funds and run the forwarder (in the API process on
    SQLite, ``gateway worker`` on PostgreSQL, as in bench/claims.py). Without, no forwarder."""
    from bench.token_endpoint import provision_client

    workdir.mkdir(parents=True, exist_ok=True)
    port, funds_port = harness.free_port(), harness.free_port()
    extra = {**harness.auth_settings(source, workdir, port), "GATEWAY_WORKER_IN_PROCESS": "false"}
    if claims:
        fund_urls = {code: f"http://{harness.HOST}:{funds_port}/funds/{code}" for code in FUNDS}
        extra["GATEWAY_MUTUALITY_URLS"] = ",".join(f"{c}={u}" for c, u in fund_urls.items())
        extra["GATEWAY_WORKER_IN_PROCESS"] = "true" if name == "sqlite" else "false"
    env = harness.gateway_settings(source, url, extra)
    harness.migrate(source, env)
    prescriber = harness.provision_prescriber(source, env, workdir)
    pharmacist = provision_client(
        source, env, workdir, client_id="bench-pharmacist", role="pharmacist", nihdi=PHARMACY_NIHDI
    )
    return Provisioned(name, source, workdir, env, port, funds_port, prescriber, pharmacist)


@contextlib.contextmanager
def serving(
    ready: Provisioned,
    opts: argparse.Namespace,
    *,
    claims: bool = False,
    wrapper: Sequence[str] = (),
    log_name: str = "gateway",
) -> Iterator[GatewayClients]:
    """``gateway serve [--workers N]`` on a provisioned database (``wrapper`` goes before
    ``-m gateway.cli``, e.g. a profiler), with the mock funds and forwarder for ``claims``."""
    from bench.token_endpoint import fetch_token

    source, workdir = ready.source, ready.workdir
    argv = source.serve_command(ready.port)
    argv = [argv[0], *wrapper, *argv[1:], "--workers", str(opts.workers)]
    with contextlib.ExitStack() as stack:
        if claims:
            members = [
                {"ssin": s, "fund": FUNDS[i % 2], "preferential": False}
                for i, s in enumerate(workloads.claim_patients(opts))
            ]
            (workdir / "members.json").write_text(json.dumps({"members": members}))
            funds_argv = [sys.executable, "-m", "mutualities", "--port", str(ready.funds_port)]
            funds_argv += [arg for code in FUNDS for arg in ("--code", code)]
            funds_argv += ["--data-dir", str(workdir / "funds")]
            funds_argv += ["--members", str(workdir / "members.json")]
            funds_argv += ["--settle-after-seconds", "1", "--log-level", "WARNING"]
            stack.enter_context(
                harness.running(
                    "funds",
                    funds_argv,
                    port=ready.funds_port,
                    ready_path="/healthz",
                    log_dir=workdir,
                )
            )
        server = stack.enter_context(
            harness.running(
                log_name,
                argv,
                port=ready.port,
                ready_path="/healthz",
                log_dir=workdir,
                env=ready.env,
                cwd=source.root,
            )
        )
        server.name = "gateway"
        if claims and ready.name != "sqlite":
            log = (workdir / "worker.log").open("wb")
            stack.callback(log.close)
            worker = subprocess.Popen(
                source.command("worker"),
                cwd=source.root,
                env=ready.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(harness.Server("worker", worker, 0, workdir / "worker.log").stop)
        yield GatewayClients(
            server,
            ready.prescriber,
            ready.pharmacist,
            lambda client: fetch_token(server.base_url, client),
        )


@contextlib.contextmanager
def gateway_stack(
    name: str,
    url: str,
    workdir: Path,
    source: harness.GatewaySource,
    opts: argparse.Namespace,
    claims: bool,
) -> Iterator[GatewayClients]:
    """The gateway on the (empty) database ``url`` with its clients (``provision``, ``serving``)."""
    ready = provision(name, url, workdir, source, claims)
    with serving(ready, opts, claims=claims) as clients:
        yield clients


# -- measuring ---------------------------------------------------------------------------------


def probe(server: harness.Server, work: Workload, mode: str) -> None:
    """One request outside the measurement: the expected status (and answer), or stop here."""
    import urllib.error
    import urllib.request

    body = work.bodies_for(mode)[-1]
    if work.path:
        request = urllib.request.Request(
            server.base_url + work.path, data=body.encode(), headers=work.headers
        )
    else:
        request = urllib.request.Request(server.base_url + body, headers=work.headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    problem = work.check(answer) if status == work.expect else f"status {status}"
    if problem:
        raise RuntimeError(f"{server.name}: probe failed ({problem}): {answer[:400]!r}")


def measure(
    server: harness.Server,
    label: str,
    work: Workload,
    opts: argparse.Namespace,
    mode: str,
    rate: float | None,
    database_cpu: DatabaseCpu,
) -> dict[str, Any]:
    run_opts = argparse.Namespace(**{**vars(opts), "rate": rate or opts.rate})
    bodies = work.bodies_for(mode)
    spec = harness.load_spec(
        server, work.path, bodies, work.headers, run_opts, mode, expect_status=work.expect
    )
    before = database_cpu.snapshot()
    result = harness.run_load(spec)
    result["db_cpu_ms_per_request"] = database_cpu.per_request(
        before, database_cpu.snapshot(), result
    )
    result["rss_mb"] = rss_mb(server.pid)
    db_cpu = result["db_cpu_ms_per_request"]
    print(
        f"    {label:22} {mode:6} {harness.one_line(result)}"
        + ("" if db_cpu is None else f"  DB {db_cpu:.2f} ms CPU/req"),
        flush=True,
    )
    settle(server)
    return result


def settle(server: harness.Server, limit_s: float = 30.0) -> None:
    """Wait until the server is idle: after an open loop it could not keep up with, it still
    works through requests the generator gave up on, which would load the next measurement."""
    from bench.loadgen import _process_cpu_s

    deadline = time.monotonic() + limit_s
    last = _process_cpu_s(server.pid)
    while time.monotonic() < deadline and last is not None:
        time.sleep(0.5)
        now = _process_cpu_s(server.pid)
        if now is None or now - last < 0.05:  # under 10 % of a core
            return
        last = now


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory of each process of a server (the uvicorn supervisor and its workers)."""
    from bench.loadgen import process_tree

    sizes = {}
    for member in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/cmdline", "rb") as cmdline:
            if b"resource_tracker" in cmdline.read():  # multiprocessing's helper, not a worker
                continue
        with contextlib.suppress(OSError), open(f"/proc/{member}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    sizes[str(member)] = round(int(line.split()[1]) / 1024, 1)
    return sizes


class Backlog:
    """The forwarder's backlog (claims stored, not yet delivered) sampled every second."""

    def __init__(self, url: str) -> None:
        self.ledger = Ledger(url)
        self.samples: list[tuple[float, int]] = []
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def queued(self) -> int:
        return self.ledger.states().get("queued", 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((round(time.monotonic() - self.began, 1), self.queued()))
            self._stop.wait(1.0)

    def __enter__(self) -> Backlog:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def drain(self, limit_s: float) -> float | None:
        """Seconds until nothing is queued, or None after ``limit_s``."""
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            if self.queued() == 0:
                return round(time.monotonic() - began, 1)
            time.sleep(0.5)
        return None


def run_scenario(
    scenario: str,
    targets: dict[str, tuple[harness.Server, GatewayClients | None]],
    opts: argparse.Namespace,
    database_cpu: DatabaseCpu,
    url: str,
) -> dict[str, Any]:
    """Every measurement of ``scenario`` on every target (interleaved per measurement)."""
    works = {}
    for label, (server, clients) in targets.items():
        kind = label.split()[0]
        works[label] = workloads.BUILDERS[scenario](kind, server.base_url, clients, opts)
        for mode, _rate in MODES[scenario]:
            if scenario != "claims" or mode == "closed":  # a claim probe uses up a patient
                probe(server, works[label], mode)
    out: dict[str, Any] = {label: {} for label in targets}
    for mode, rate in MODES[scenario]:
        key = mode if rate is None else f"{mode} {rate:g}/s"
        for label, (server, clients) in targets.items():
            run = functools.partial(measure, server, label, works[label], opts, mode, rate)
            if scenario == "claims" and clients is not None:
                out[label][key] = with_backlog(url, functools.partial(run, DatabaseCpu(None)))
            else:
                out[label][key] = run(database_cpu)
    return out


def with_backlog(url: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A claim intake run, with the backlog sampled during it and until drained (60 s at most)."""
    with Backlog(url) as backlog:
        result = run()
        drained = backlog.drain(60.0)
    result["backlog"] = {"samples_s_queued": backlog.samples, "drained_after_run_s": drained}
    backlog.ledger.close()
    queued = [n for _t, n in backlog.samples]
    print(f"    {'':22} backlog (queued, 1 s apart): {queued[:40]} drained in {drained} s")
    return result


# -- one database ------------------------------------------------------------------------------


def run_database(
    name: str, command: Command, opts: argparse.Namespace, sources: list[harness.GatewaySource]
) -> dict[str, Any]:
    scenarios = command.scenarios
    # The settings: `gateway serve --workers 2` on PostgreSQL, one process on SQLite.
    workers = opts.workers or (2 if name == "postgresql" else 1)
    opts = argparse.Namespace(**{**vars(opts), "workers": workers})
    result: dict[str, Any] = {"scenarios": {s: {} for s in scenarios}, "workers": workers}
    with harness.scratch_database(PREFIX, name, opts.postgres_url) as (workdir, url):
        key = sources[0].run("keys", "new-encryption-key", env=sources[0].env({}))
        database_cpu = DatabaseCpu(url if name == "postgresql" else None)
        with references(name, url, workdir, opts, key) as refs:
            for n, source in enumerate(sources):
                label = "gateway" if len(sources) == 1 else f"gateway {source_name(source)}"
                if n:
                    harness.reset_postgres(url) if name == "postgresql" else None
                gateway_url = (
                    f"sqlite:///{workdir / f'gateway-{n}.db'}" if name == "sqlite" else url
                )
                print(f"  {label}: {source.label}", flush=True)
                with gateway_stack(
                    name,
                    gateway_url,
                    workdir / f"gateway-{n}",
                    source,
                    opts,
                    claims="claims" in scenarios,
                ) as clients:
                    for scenario in scenarios:
                        print(f"  {scenario}", flush=True)
                        targets: dict[str, tuple[harness.Server, GatewayClients | None]] = {}
                        if n == 0:  # the references once per database
                            targets = {"bare": (refs["bare"], None), "floor": (refs["floor"], None)}
                        targets[label] = (clients.server, clients)
                        figures = run_scenario(scenario, targets, opts, database_cpu, gateway_url)
                        result["scenarios"][scenario].update(figures)
                    result.setdefault("gateway_log_tail", {})[label] = clients.server.log_tail(10)
    for scenario, figures in result["scenarios"].items():
        figures["ratios"] = ratios(figures)
        figures["targets_met"] = targets_met(name, scenario, figures)
    return result


def source_name(source: harness.GatewaySource) -> str:
    return source.commit[:7]


def ratios(figures: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per gateway and measurement: its rate (closed loop) or CPU per request over the bare and
    floor endpoints' in the same run."""
    out: dict[str, dict[str, float | None]] = {}
    for label, runs in figures.items():
        if not label.startswith("gateway"):
            continue
        for key, result in runs.items():
            row: dict[str, float | None] = {}
            for ref in ("bare", "floor"):
                other = figures.get(ref, {}).get(key)
                if other is None:
                    continue
                if key == "closed":
                    row[f"rate_to_{ref}"] = _ratio(result["rate_per_s"], other["rate_per_s"])
                row[f"cpu_over_{ref}"] = _ratio(_cpu(result), _cpu(other))
            out[f"{label} {key}"] = row
    return out


def _cpu(result: dict[str, Any]) -> float | None:
    value = result.get("cpu", {}).get("server_cpu_ms_per_request")
    return None if value is None else float(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 4)


def targets_met(name: str, scenario: str, figures: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, for the last gateway measured (HEAD in ``compare``)."""
    label = [k for k in figures if k.startswith("gateway")][-1]
    runs, target = figures[label], TARGETS[scenario]
    met: dict[str, bool] = {}
    closed = runs.get("closed")
    if closed is not None and "per_s" in target:
        per_s = (
            SQLITE_TARGETS.get(scenario, target["per_s"]) if name == "sqlite" else target["per_s"]
        )
        met[f">= {per_s:g}/s"] = closed["rate_per_s"] >= per_s and closed["errors"] == 0
        floor = figures.get("floor", {}).get("closed")
        if floor:
            met[f">= {FLOOR_SHARE:.0%} of floor"] = (
                closed["rate_per_s"] >= FLOOR_SHARE * floor["rate_per_s"]
            )
    if closed is not None and "cpu_ms" in target:
        cpu = _cpu(closed)
        met[f"<= {target['cpu_ms']:g} ms CPU"] = cpu is not None and cpu <= target["cpu_ms"]
    for key, result in runs.items():
        if key.startswith("open") and "p99_ms" in target:
            p99 = result["latency_ms"]["p99"]
            met[f"p99 < {target['p99_ms']:g} ms ({key})"] = (
                p99 is not None and p99 < target["p99_ms"] and result["errors"] == 0
            )
        backlog = result.get("backlog")
        if key.startswith("open") and backlog:
            met[f"backlog drained ({key})"] = backlog["drained_after_run_s"] is not None
    return met


# -- report ------------------------------------------------------------------------------------


def markdown(command_name: str, data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    lines = [
        f"# {PREFIX} {command_name}",
        "",
        f"{data['date']} · gateways: {', '.join(data['sources'])} · {m['cpu_model']}, "
        f"{m['cores']} cores · load average at start {m['load_average_at_start']} · Python "
        f"{m['python']} · HEAD `{g['head'][:12]}`",
        "",
        f"`python -m bench.suite {command_name}`: {COMMANDS[command_name].help}. Closed loop: "
        f"{s['concurrency']} connections; open loop: {s['open_connections']} connections, latency "
        f"from each request's due time. {s['duration_s']} s measured after {s['warmup_s']} s "
        f"warm-up; gateway and floor with {s['workers']} uvicorn worker(s). CPU ms/req = CPU of "
        "the server's processes (all workers) over the answers in the window; DB CPU = the "
        "PostgreSQL backends' (an estimate). Other load = the machine's CPU used by neither the "
        "server nor the load generator (PostgreSQL, other people's work), in cores. The machine is "
        "shared and noisy: read the ratios and CPU per request before the rates.",
        "",
    ]
    if len(data["sources"]) > 1:
        lines += before_after(data)
    for _name, result in harness.database_sections(data, lines):
        for scenario, figures in result["scenarios"].items():
            lines += [
                f"### {scenario}",
                "",
                "| target | run | req/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/req "
                "| DB CPU ms/req | other load / steal | RSS MB |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            ]
            for label, runs in figures.items():
                if label in ("ratios", "targets_met"):
                    continue
                for key, r in runs.items():
                    lat, cpu = r["latency_ms"], r.get("cpu", {})
                    lines.append(
                        f"| {label} | {key} | {harness.fmt(r['rate_per_s'], 0)} "
                        f"| {harness.fmt(lat['p50'], 2)} | {harness.fmt(lat['p95'], 2)} "
                        f"| {harness.fmt(lat['p99'], 2)} | {r['errors']} "
                        f"| {harness.fmt(cpu.get('server_cpu_ms_per_request'), 3)} "
                        f"| {harness.fmt(r.get('db_cpu_ms_per_request'), 3)} "
                        f"| {harness.fmt(cpu.get('other_cores_busy'), 2)} / "
                        f"{harness.fmt(cpu.get('steal_cores'), 2)} "
                        f"| {', '.join(f'{v:g}' for v in r.get('rss_mb', {}).values())} |"
                    )
            lines.append("")
            for row, values in figures["ratios"].items():
                shown = ", ".join(
                    f"{k.replace('_', ' ')} {harness.fmt(v, 3)}" for k, v in values.items()
                )
                lines.append(f"- {row}: {shown}")
            for label, runs in figures.items():
                for key, r in runs.items() if isinstance(runs, dict) else ():
                    if isinstance(r, dict) and "backlog" in r:
                        queued = [n for _t, n in r["backlog"]["samples_s_queued"]]
                        lines.append(
                            f"- {label} {key}: claims queued, 1 s apart: {queued}; drained "
                            f"{r['backlog']['drained_after_run_s']} s after the run"
                        )
            met = figures["targets_met"]
            lines += [
                "- targets: " + "; ".join(f"{k} {'✅' if v else '❌'}" for k, v in met.items()),
                "",
            ]
    return "\n".join(lines)


def before_after(data: dict[str, Any]) -> list[str]:
    """One row per database, scenario and run: each gateway's rate, CPU per request and p99,
    beside the floor's (``compare``)."""
    rows: list[str] = []
    for name, result in data["databases"].items():
        if "skipped" in result:
            continue
        for scenario, figures in result["scenarios"].items():
            gateways = [k for k in figures if k.startswith("gateway")]
            if not rows:
                head = " | ".join(f"{g} req/s, CPU ms, p99 ms" for g in gateways)
                rows += [
                    "## Before and after",
                    "",
                    f"| database | scenario | run | {head} | floor req/s, CPU ms | bare req/s |",
                    "|---|---|---|" + "--:|" * (len(gateways) + 2),
                ]
            for key in figures[gateways[0]]:
                cells = [_cell(figures[g].get(key)) for g in gateways]
                cells.append(_cell(figures.get("floor", {}).get(key), p99=False))
                bare = figures.get("bare", {}).get(key)
                cells.append(harness.fmt(bare["rate_per_s"], 0) if bare else "–")
                rows.append(f"| {name} | {scenario} | {key} | " + " | ".join(cells) + " |")
    return [*rows, ""] if rows else []


def _cell(result: dict[str, Any] | None, *, p99: bool = True) -> str:
    if result is None:
        return "–"
    text = f"{harness.fmt(result['rate_per_s'], 0)}, {harness.fmt(_cpu(result), 2)}"
    if p99:
        text += f", {harness.fmt(result['latency_ms']['p99'], 0)}"
    return text + (f" ({result['errors']} errors)" if result["errors"] else "")


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    harness.common_options(
        parser, DATABASES, postgres_url=DEFAULT_POSTGRES_URL, default_databases=None
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="uvicorn workers (gateway, floor)"
    )
    parser.add_argument("--fetch-prescriptions", type=int, default=200)
    parser.add_argument("--dispense-budget", type=float, default=400.0, help="most dispenses/s")
    parser.add_argument("--claims-budget", type=float, default=300.0, help="most claims/s")
    parser.add_argument("--scenarios", default=None, help="a subset of the command's scenarios")
    parser.add_argument(
        "--refs",
        default=None,
        help=f"compare: the commits to measure, in order (default {BASELINE},HEAD)",
    )
    opts = parser.parse_args(argv)
    opts.claims_rate = max(rate or 0.0 for _mode, rate in MODES["claims"])  # open-loop claims
    command = COMMANDS[opts.command]
    if opts.scenarios:
        chosen = tuple(s.strip() for s in opts.scenarios.split(",") if s.strip())
        if not chosen or set(chosen) - set(command.scenarios):
            parser.error(f"--scenarios takes a list of {', '.join(command.scenarios)}")
        COMMANDS[opts.command] = command = replace(command, scenarios=chosen)
    if opts.refs and opts.command == "compare":  # the report says which commits it compares
        opts.refs = [ref.strip() for ref in opts.refs.split(",") if ref.strip()]
        named = ", ".join(opts.refs)
        COMMANDS[opts.command] = command = replace(command, help=f"side by side: {named}")
    if opts.databases is None:
        opts.databases = ",".join(command.databases)
    harness.settle_options(parser, opts, DATABASES)
    opts.workers = opts.workers or command.workers
    return opts.command, opts


def main(argv: Sequence[str] | None = None) -> int:
    name, opts = parse_args(argv)
    command = COMMANDS[name]
    refs = [opts.git_ref] if opts.git_ref else list(command.refs)
    if opts.refs and name == "compare":
        refs = opts.refs  # a list since parse_args
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(harness.gateway_source(ref)) for ref in refs]
        data: dict[str, Any] = {
            "scenario": f"{PREFIX}-{name}",
            "date": harness.now_iso(),
            "git": harness.git_info(sources[-1]),
            "sources": [s.label for s in sources],
            "machine": harness.machine_info(),
            "settings": {
                "duration_s": opts.duration,
                "warmup_s": opts.warmup,
                "concurrency": opts.concurrency,
                "open_connections": opts.open_connections,
                "workers": opts.workers or "2 on PostgreSQL, 1 on SQLite",
                "modes": {s: MODES[s] for s in command.scenarios},
                "fetch_prescriptions": opts.fetch_prescriptions,
                "dispense_budget": opts.dispense_budget,
                "claims_budget": opts.claims_budget,
            },
            "targets": {s: TARGETS[s] for s in command.scenarios},
        }
        data["databases"] = harness.each_database(
            opts.databases, lambda db: run_database(db, command, opts, sources)
        )
    return harness.publish(f"{PREFIX}-{name}", data, markdown(name, data), opts)


if __name__ == "__main__":
    sys.exit(main())
