"""Shared benchmark plumbing: servers in their own processes, the load generator, machine facts,
result files. Scenarios (``bench/<scenario>.py``) compose these; see bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.loadgen import LoadSpec

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
HOST = "127.0.0.1"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"

PRESCRIBER_NIHDI = "19234011004"


# -- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    """Poll ``GET path`` until it answers 200; fail early (with the log) if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready on {path} after {timeout} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running(
    name: str,
    argv: list[str],
    *,
    port: int,
    ready_path: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
) -> Iterator[Server]:
    """Start ``argv`` in its own process (and session, so Ctrl-C reaches only the benchmark, which
    stops it), wait until ``ready_path`` answers, yield it, stop it."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log_path)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        server.stop()


def bare_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.bare_app", "--host", HOST, "--port", str(port)]


def bare_endpoint(log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """``bench.bare_app`` running on a free port (logs in ``log_dir``)."""
    port = free_port()
    return running("bare", bare_command(port), port=port, ready_path="/healthz", log_dir=log_dir)


# -- the gateway: which code, its configuration, its database ------------------------------------


@dataclass(frozen=True)
class GatewaySource:
    """The gateway code a benchmark runs: the working tree, or one commit exported read-only with
    ``git archive`` (so that work in progress beside the benchmark cannot change what is measured)."""

    root: Path
    commit: str
    uncommitted_changes: bool

    @property
    def has_oauth(self) -> bool:
        """Whether this gateway authenticates with OAuth bearer tokens (else the development
        identity header)."""
        return (self.root / "gateway" / "auth" / "routes.py").exists()

    @property
    def label(self) -> str:
        if self.root == REPO:
            return "working tree" + (
                " with uncommitted changes" if self.uncommitted_changes else ""
            )
        return f"commit {self.commit[:12]} (git archive)"

    def command(self, *args: str) -> list[str]:
        """``gateway ARGS`` from this source (``python -m`` in ``root``, so the source wins over
        the editable install of the working tree)."""
        return [sys.executable, "-m", "gateway.cli", *args]

    def serve_command(self, port: int) -> list[str]:
        return self.command("serve", "--host", HOST, "--port", str(port))

    def env(self, settings: Mapping[str, str]) -> dict[str, str]:
        """This process's environment without its GATEWAY_* variables, plus ``settings``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        if self.root != REPO:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(self.root), env.get("PYTHONPATH")])
            )
        env.update(settings)
        return env

    def run(self, *args: str, env: Mapping[str, str]) -> str:
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=dict(env),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()


@contextlib.contextmanager
def gateway_source(ref: str | None = None) -> Iterator[GatewaySource]:
    """The working tree (``ref`` None), or commit ``ref`` exported to a temporary directory."""
    if ref is None:
        yield GatewaySource(REPO, _git("rev-parse", "HEAD"), bool(_git("status", "--porcelain")))
        return
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if not commit:
        raise ValueError(f"not a commit: {ref!r}")
    with tempfile.TemporaryDirectory(prefix="bench-source-") as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=REPO, check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield GatewaySource(Path(tmp), commit, uncommitted_changes=False)


def gateway_settings(
    source: GatewaySource, database_url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The gateway's whole configuration (env vars only): a fresh encryption key, the development
    identity header if this gateway still has it, and log level WARNING, since the request-id
    middleware would otherwise write one JSON line per request, which is not what is measured."""
    key = source.run("keys", "new-encryption-key", env=source.env({}))
    settings = {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENCRYPTION_KEY": key,
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    if not source.has_oauth:
        settings["GATEWAY_INSECURE_DEV_AUTH"] = "1"
    return source.env({**settings, **(extra or {})})


def migrate(source: GatewaySource, env: Mapping[str, str]) -> None:
    source.run("db", "upgrade", env=env)


# -- who calls: the benchmark's prescriber ---------------------------------------------------------
# The one place that decides how a scenario authenticates. Gateways with OAuth get a registered
# client (development CA, ``private_key_jwt``) and a real bearer token from ``/oauth/token``
# (helpers in bench/token_endpoint.py); older ones get the development identity header.


def auth_settings(source: GatewaySource, workdir: Path, port: int) -> dict[str, str]:
    """Extra gateway settings for authentication. Rate limits are off: they are not measured."""
    if not source.has_oauth:
        return {}
    return {
        "GATEWAY_DATA_DIR": str(workdir),  # the development CA goes to <data dir>/pki
        "GATEWAY_PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        "GATEWAY_TOKEN_RATE_LIMIT_PER_MINUTE": "0",
    }


def provision_prescriber(source: GatewaySource, env: dict[str, str], workdir: Path) -> Any:
    """Register the prescriber client (migrated database, gateway not yet started); None without
    OAuth."""
    if not source.has_oauth:
        return None
    from bench.token_endpoint import provision_client

    return provision_client(source, env, workdir, role="prescriber", nihdi=PRESCRIBER_NIHDI)


def auth_headers(gateway: Server, client: Any) -> dict[str, str]:
    """The headers that authenticate the prescriber (NIHDI ``PRESCRIBER_NIHDI``) to ``gateway``."""
    if client is None:
        return {
            "x-insecure-dev-identity": f"role=prescriber; nihdi={PRESCRIBER_NIHDI}; client_id=bench"
        }
    from bench.token_endpoint import fetch_token

    return {"Authorization": f"Bearer {fetch_token(gateway.base_url, client)}"}


def _libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def reset_postgres(url: str) -> None:
    """Create the benchmark's own database if missing and empty its ``public`` schema, so each run
    starts from fresh tables and never touches the test suite's database. Raises if unreachable."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or name in ("test", "postgres"):
        raise ValueError(f"refusing to reset database {name!r}: use a dedicated benchmark database")
    with psycopg.connect(_libpq_url(url, "postgres"), autocommit=True, connect_timeout=3) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(_libpq_url(url), autocommit=True, connect_timeout=3) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


# -- load ------------------------------------------------------------------------------------------


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Run the load generator in its own process and return its summary."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=REPO,
        input=json.dumps(asdict(spec)).encode(),
        capture_output=True,
        check=False,
        timeout=spec.warmup + spec.duration * 3 + 60,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{completed.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def post_once(
    server: Server, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, bytes]:
    """One request outside the measurement, to fail fast with the server's own answer."""
    request = urllib.request.Request(server.base_url + path, data=body, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- facts and results -----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        memory_gb = round(int(meminfo.readline().split()[1]) / 1024 / 1024, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def _git(*args: str) -> str:
    """Read-only git queries: the benchmark never changes the repository's state."""
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()


def git_info(source: GatewaySource) -> dict[str, Any]:
    return {
        "head": _git("rev-parse", "HEAD"),
        "measured_commit": source.commit,
        "measured_source": source.label,
        # True: the measured code is the commit plus work in progress beside it.
        "uncommitted_changes": source.uncommitted_changes,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_results(
    scenario: str, data: Mapping[str, Any], markdown: str, results_dir: Path = RESULTS_DIR
) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{scenario}.json"
    md_path = results_dir / f"{scenario}.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path.write_text(markdown)
    return [json_path, md_path]


def publish(scenario: str, data: dict[str, Any], report: str, opts: Any) -> int:
    """Print a scenario's report and, unless told not to (``opts.save``), write its results."""
    print()
    print(report)
    if opts.save:
        for path in write_results(scenario, data, report, opts.results_dir):
            print(f"wrote {path}")
    return 0


def scenario_main(
    scenario: str,
    opts: argparse.Namespace,
    settings: dict[str, Any],
    run_one: Callable[[str, argparse.Namespace, GatewaySource], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    extra: Mapping[str, Any] | None = None,
) -> int:
    """A scenario's whole run on the gateway of ``opts.git_ref`` (or the working tree):
    ``run_one`` per database, then its results with the facts every result file carries."""
    with gateway_source(opts.git_ref) as source:
        print(f"gateway: {source.label}", flush=True)
        data: dict[str, Any] = {
            "scenario": scenario,
            "date": now_iso(),
            "git": git_info(source),
            "machine": machine_info(),
            "settings": settings,
            **(extra or {}),
        }
        data["databases"] = each_database(opts.databases, lambda name: run_one(name, opts, source))
    return publish(scenario, data, render(data), opts)


def database_sections(data: Mapping[str, Any], lines: list[str]) -> Iterator[tuple[str, Any]]:
    """Each database's heading in ``lines`` (and why it was skipped); yields those that ran."""
    for name, result in data["databases"].items():
        lines += [f"## {name}", ""]
        if "skipped" in result:
            lines += [f"Skipped: {result['skipped']}", ""]
            continue
        yield name, result


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def database_url(name: str, workdir: Path, postgres_url: str) -> str:
    """The URL a run uses: a fresh SQLite file in ``workdir``, or the (reset) PostgreSQL database."""
    if name == "sqlite":
        return f"sqlite:///{workdir / 'gateway.db'}"
    reset_postgres(postgres_url)
    return str(postgres_url)


class DatabaseUnavailable(RuntimeError):
    """The run's database cannot be prepared (PostgreSQL not reachable): the run is skipped."""


@contextlib.contextmanager
def scratch_database(scenario: str, name: str, postgres_url: str) -> Iterator[tuple[Path, str]]:
    """A temporary work directory for one run and its database URL (``database_url``); raises
    ``DatabaseUnavailable`` with the reason when the database cannot be prepared."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{scenario}-{name}-") as tmp:
        workdir = Path(tmp)
        try:
            url = database_url(name, workdir, postgres_url)
        except Exception as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}".strip()) from exc
        yield workdir, url


def one_line(result: dict[str, Any]) -> str:
    """A load result on one console line: rate, latency percentiles, errors, CPU."""
    lat = result["latency_ms"]
    cpu = result.get("cpu", {})
    return (
        f"{result['rate_per_s']:9.1f}/s  p50 {fmt(lat['p50'], 2)}  "
        f"p95 {fmt(lat['p95'], 2)}  p99 {fmt(lat['p99'], 2)} ms  "
        f"errors {result['errors']}  server {fmt(cpu.get('server_cpu_ms_per_request'), 2)} "
        f"ms CPU/req  other load {fmt(cpu.get('other_cores_busy'), 2)} cores  "
        f"steal {fmt(cpu.get('steal_cores'), 2)}"
    )


def load_spec(
    server: Server,
    path: str,
    bodies: list[str],
    headers: dict[str, str],
    opts: argparse.Namespace,
    mode: str,
    *,
    expect_status: int = 201,
) -> LoadSpec:
    """The load of one measurement from the common options (``--concurrency``, ``--rate``...)."""
    return LoadSpec(
        host=HOST,
        port=server.port,
        path=path,
        bodies=bodies,
        headers=headers,
        mode=mode,
        connections=opts.concurrency if mode == "closed" else opts.open_connections,
        rate=opts.rate,
        duration=opts.duration,
        warmup=opts.warmup,
        expect_status=expect_status,
        client=getattr(opts, "client", "raw"),
        server_pid=server.pid,
    )


# -- the command line and the per-database loop shared by the scenarios ---------------------------


def common_options(
    parser: argparse.ArgumentParser,
    databases: Sequence[str],
    *,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    rate: float = 500.0,
    concurrency: int = 16,
    open_connections: int = 64,
    default_databases: str | None = "",
) -> None:
    """The options every scenario shares (``settle_options`` reads them after parsing)."""
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    parser.add_argument("--rate", type=float, default=rate, help="open-loop requests per second")
    parser.add_argument(
        "--concurrency", type=int, default=concurrency, help="closed-loop connections"
    )
    parser.add_argument(
        "--open-connections",
        type=int,
        default=open_connections,
        help="connections the open loop may use at once (a request waits for a free one)",
    )
    parser.add_argument(
        "--databases",
        default=",".join(databases) if default_databases == "" else default_databases,
        help=",".join(databases),
    )
    parser.add_argument(
        "--postgres-url",
        default=postgres_url,
        help="a dedicated database: its public schema is dropped and recreated",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short smoke run (2 s, 0.5 s warm-up), not saved"
    )
    parser.add_argument(
        "--git-ref",
        default=None,
        help="run the gateway of this commit (exported with git archive) instead of the working tree",
    )
    parser.add_argument("--results-dir", type=Path, default=None)


def settle_options(
    parser: argparse.ArgumentParser, opts: argparse.Namespace, databases: Sequence[str]
) -> None:
    """The options every scenario shares, after parsing: ``--databases`` as a checked list,
    ``--quick`` as 2 s windows after 0.5 s of warm-up, and where the results go (nothing is
    saved for ``--quick`` unless ``--results-dir`` is given)."""
    opts.databases = [d.strip() for d in opts.databases.split(",") if d.strip()]
    if set(opts.databases) - set(databases) or not opts.databases:
        parser.error(f"--databases takes a list of {', '.join(databases)}")
    if opts.quick:
        opts.duration, opts.warmup = 2.0, 0.5
    opts.save = opts.results_dir is not None or not opts.quick
    opts.results_dir = opts.results_dir or RESULTS_DIR


def each_database(
    databases: Sequence[str], run_one: Callable[[str], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``run_one`` per database; one that fails (a server that would not start, a command that
    failed) is reported as skipped with the last line of what it printed, and the rest go on."""
    results: dict[str, dict[str, Any]] = {}
    for name in databases:
        print(f"{name}:", flush=True)
        try:
            results[name] = run_one(name)
        except DatabaseUnavailable as exc:  # note it, carry on with the rest
            results[name] = {"skipped": str(exc)}
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            detail = str(getattr(exc, "stderr", None) or "").strip()
            print(f"  failed: {exc}\n{detail}", file=sys.stderr)
            reason = detail.splitlines()[-1] if detail else str(exc)
            results[name] = {"skipped": f"failed: {reason}"[:300]}
        if "skipped" in results[name]:
            print(f"  skipped: {results[name]['skipped']}")
    return results
