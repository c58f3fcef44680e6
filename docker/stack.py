"""The production shape of docker/compose.yaml as local processes, without Docker.

``make stack`` (``python docker/stack.py up``) starts, on loopback and free ports, with every file
under one state directory (default ``./var/stack``): a PostgreSQL cluster of its own (``initdb``
into the state directory; the machine's cluster is never touched), ``redis-server``, the mock
funds (``python -m mutualities``), ``gateway db upgrade``, two ``gateway serve`` instances, one
``gateway worker`` and Debian's nginx in front with docker/nginx.conf, the file compose mounts,
in which only the instances' addresses and the listen port are replaced. ``make stack-stop``
(``down``) stops them, the proxy first and the database last. ``status`` prints what runs where.

The gateways' settings are compose.yaml's (the limits, production mode), with the addresses
local. tests/stack/ drives the same class to stop and start single services under load.
Missing nginx, PostgreSQL or Redis binaries are installed with apt-get (as root).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
FUNDS = ("100", "300", "500")
INSTANCES = ("gateway-1", "gateway-2")
# Started in this order, stopped in the reverse one.
ORDER = ("postgres", "redis", "funds", *INSTANCES, "worker", "nginx")
# Set here for loopback processes; every other GATEWAY_ setting is compose.yaml's.
LOCAL_SETTINGS = frozenset(
    {
        "GATEWAY_DATABASE_URL",
        "GATEWAY_REDIS_URL",
        "GATEWAY_ENCRYPTION_KEY",
        "GATEWAY_PUBLIC_BASE_URL",
        "GATEWAY_DATA_DIR",
        "GATEWAY_MUTUALITY_URLS",
        "GATEWAY_FORWARDED_ALLOW_IPS",
    }
)
# Debian packages providing what a missing binary needs.
PACKAGES = {"nginx": "nginx-light", "postgres": "postgresql", "redis-server": "redis-server"}


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def compose_settings() -> dict[str, str]:
    """The gateway environment of docker/compose.yaml (its ``x-gateway`` anchor), minus what
    names compose's network: one source for the limits both shapes run with."""
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    env = compose["x-gateway"]["environment"]
    return {k: str(v) for k, v in env.items() if k not in LOCAL_SETTINGS}


def nginx_site(upstreams: list[str], listen: str) -> str:
    """docker/nginx.conf with compose's ``gateway-N:8000`` servers and ``listen 8080`` replaced;
    nothing else changes, so the stack runs the proxy configuration that ships."""
    conf = (DOCKER / "nginx.conf").read_text()
    addresses = iter(upstreams)
    conf, servers = re.subn(r"gateway-\d+:8000", lambda _m: next(addresses), conf)
    if servers != len(upstreams):
        raise StackError("docker/nginx.conf: expected one server line per gateway instance")
    conf, listens = re.subn(r"^(\s*)listen 8080;$", rf"\1listen {listen};", conf, flags=re.M)
    if listens != 1:
        raise StackError("docker/nginx.conf: expected one `listen 8080;`")
    return conf


def find_binary(name: str) -> str | None:
    """``postgres`` and ``initdb`` live in Debian's versioned directory, off the PATH."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    for path in (*reversed(versions), Path("/usr/sbin") / name):
        if path.exists():
            return str(path)
    return None


def ensure_installed() -> None:
    missing = [pkg for binary, pkg in PACKAGES.items() if find_binary(binary) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"install {' '.join(missing)} (apt-get as root)")
    print(f"installing {' '.join(missing)}", flush=True)
    apt = shutil.which("apt-get") or "apt-get"
    subprocess.run([apt, "update"], check=True)  # noqa: S603
    subprocess.run([apt, "install", "-y", "--no-install-recommends", *missing], check=True)  # noqa: S603


@dataclass
class Service:
    """One process of the stack: how to start it, how it stops cleanly, when it is up."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_signal: int = signal.SIGTERM
    health: str | None = None  # an HTTP URL answering 200 once up
    user: str | None = None  # PostgreSQL refuses to run as root
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class Stack:
    """The processes under ``state``; ``stack.json`` there records their ports and pids, so that
    another invocation (``down``, ``status``) finds them."""

    def __init__(self, state: Path, *, settings: dict[str, str] | None = None) -> None:
        self.state = state.resolve()
        self.file = self.state / "stack.json"
        self.logs = self.state / "logs"
        self.extra = dict(settings or {})
        self.services: dict[str, Service] = {}
        self.ports: dict[str, int] = {}
        self.funds_args: list[str] = []

    # --- addresses ---------------------------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def instance_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.ports['postgres']}/gateway"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    def fund_url(self, code: str) -> str:
        return f"http://127.0.0.1:{self.ports['funds']}/funds/{code}"

    def gateway_env(self) -> dict[str, str]:
        """What ``gateway`` commands run with against this stack (also the operator's)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(compose_settings())
        env.update(
            {
                "GATEWAY_DATABASE_URL": self.database_url,
                "GATEWAY_REDIS_URL": self.redis_url,
                "GATEWAY_ENCRYPTION_KEY": (self.state / "encryption.key").read_text().strip(),
                "GATEWAY_PUBLIC_BASE_URL": self.proxy_url,
                "GATEWAY_DATA_DIR": str(self.state / "gateway"),
                "GATEWAY_MUTUALITY_URLS": ",".join(f"{c}={self.fund_url(c)}" for c in FUNDS),
                # nginx runs on this machine: its X-Forwarded-For is believed from loopback.
                "GATEWAY_FORWARDED_ALLOW_IPS": "127.0.0.1",
                # The instances listen on loopback only and nginx hides /metrics from clients.
                "GATEWAY_METRICS_PUBLIC": "true",
            }
        )
        env.update(self.extra)
        return env

    # --- the services ------------------------------------------------------------------------

    def _define(self) -> None:
        python = sys.executable
        bare = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        postgres = find_binary("postgres")
        redis = find_binary("redis-server")
        nginx = find_binary("nginx")
        if postgres is None or redis is None or nginx is None:
            raise StackError("nginx, PostgreSQL or Redis is missing")
        pg_user = "postgres" if os.geteuid() == 0 else None
        env = self.gateway_env()
        self.services = {
            "postgres": Service(
                "postgres",
                [
                    postgres,
                    "-D",
                    str(self.state / "postgres"),
                    "-p",
                    str(self.ports["postgres"]),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.state / 'postgres-socket'}",
                    "-c",
                    "max_connections=100",
                ],
                bare,
                stop_signal=signal.SIGINT,  # fast shutdown: SIGTERM waits for the pools to leave
                user=pg_user,
            ),
            "redis": Service(
                "redis",
                [
                    redis,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.ports["redis"]),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.state / "redis"),
                ],
                bare,
            ),
            "funds": Service(
                "funds",
                [
                    python,
                    "-m",
                    "mutualities",
                    *[a for c in FUNDS for a in ("--code", c)],
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.ports["funds"]),
                    "--data-dir",
                    str(self.state / "funds"),
                    *self.funds_args,
                ],
                {k: v for k, v in bare.items() if not k.startswith("MUTUALITIES_")},
                health=f"http://127.0.0.1:{self.ports['funds']}/healthz",
            ),
            **{
                name: Service(
                    name,
                    [
                        python,
                        "-m",
                        "gateway.cli",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.ports[name]),
                        # one process per instance: two instances already share the machine
                        "--workers",
                        "1",
                    ],
                    env,
                    health=f"{self.instance_url(name)}/healthz",
                )
                for name in INSTANCES
            },
            "worker": Service("worker", [python, "-m", "gateway.cli", "worker"], env),
            "nginx": Service(
                "nginx",
                [nginx, "-c", str(self.state / "nginx" / "nginx.conf"), "-p", str(self.state)],
                bare,
                stop_signal=signal.SIGQUIT,  # graceful: in-flight requests finish
                health=f"http://127.0.0.1:{self.ports['nginx']}/healthz",
            ),
        }

    def _prepare(self) -> None:
        """The state directory: the key, the cluster, the proxy's configuration, the CA."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)  # the postgres user must reach its data directory
        self.logs.mkdir(exist_ok=True)
        for sub in ("redis", "funds", "gateway", "nginx", "postgres-socket"):
            (self.state / sub).mkdir(exist_ok=True)
        key = self.state / "encryption.key"
        if not key.exists():
            key.touch(0o600)
            # What `gateway keys new-encryption-key` prints: 32 random bytes, url-safe base64.
            done = self._gateway("keys", "new-encryption-key", env=os.environ.copy())
            key.write_text(done.stdout.strip() + "\n")
        data = self.state / "postgres"
        if not (data / "PG_VERSION").exists():
            initdb = find_binary("initdb")
            assert initdb
            data.mkdir(exist_ok=True)
            user = "postgres" if os.geteuid() == 0 else None
            if user:
                shutil.chown(data, user)
                shutil.chown(self.state / "postgres-socket", user)
            self._run(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
                user=user,
            )
        site = nginx_site([f"127.0.0.1:{self.ports[n]}" for n in INSTANCES], self._listen())
        (self.state / "nginx" / "site.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = self.state / "nginx"
        (self.state / "nginx" / "nginx.conf").write_text(
            f"{user}pid {temp}/nginx.pid;\nerror_log {self.logs}/nginx-error.log warn;\n"
            "daemon off;\nworker_processes 1;\nevents {}\nhttp {\n"
            f"  access_log {self.logs}/nginx-access.log;\n"
            + "".join(
                f"  {kind}_temp_path {temp}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  include {temp}/site.conf;\n}}\n"
        )

    def _listen(self) -> str:
        return f"127.0.0.1:{self.ports['nginx']}"

    def _run(self, argv: list[str], *, user: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, user=user, check=False)  # noqa: S603
        if done.returncode != 0:
            raise StackError(f"{' '.join(argv[:3])} failed:\n{done.stdout}{done.stderr}")
        return done

    def _gateway(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "gateway.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"gateway {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def gateway(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an operator's ``gateway`` command against this stack."""
        return self._gateway(*args, env=self.gateway_env())

    # --- lifecycle ---------------------------------------------------------------------------

    def up(self) -> None:
        ensure_installed()
        if self.file.exists() and self.running():
            raise StackError(f"a stack already runs from {self.state}: `make stack-stop` first")
        self.ports = {name: free_port() for name in ORDER if name != "worker"}
        self._prepare()
        self._define()
        try:
            self.start("postgres")
            self._create_database()
            self.start("redis")
            self.gateway("db", "upgrade")
            self.gateway("certs", "init")
            for name in ("funds", *INSTANCES, "worker", "nginx"):
                self.start(name)
        except BaseException:
            self.down()
            raise

    def start(self, name: str) -> None:
        """Start one service (again) and wait until it answers."""
        service = self.services[name]
        with (self.logs / f"{name}.log").open("ab") as log:
            service.process = subprocess.Popen(  # noqa: S603
                service.argv,
                cwd=ROOT,
                env=service.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `make stack`; a Ctrl-C here does not reach it
                user=service.user,
            )
        service.pid = service.process.pid
        self._save()
        self.wait_up(name)

    def wait_up(self, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(name):
                raise StackError(f"{name} exited:\n{self.tail(name)}")
            if self._answers(name):
                return
            time.sleep(0.05)
        raise StackError(f"{name} did not come up:\n{self.tail(name)}")

    def _answers(self, name: str) -> bool:
        service = self.services[name]
        if name == "postgres":
            return self._connects(f"dbname=postgres host=127.0.0.1 port={self.ports[name]}")
        if name == "redis":
            return _redis_ping(self.ports[name])
        if service.health is None:  # the worker: alive for a moment is up
            time.sleep(0.5)
            return self.alive(name)
        try:
            return httpx.get(service.health, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def _connects(self, dsn: str) -> bool:
        import psycopg

        try:
            with psycopg.connect(f"{dsn} user=postgres connect_timeout=1"):
                return True
        except psycopg.OperationalError:
            return False

    def _create_database(self) -> None:
        import psycopg

        dsn = f"dbname=postgres host=127.0.0.1 port={self.ports['postgres']} user=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'gateway'").fetchone()
            if found is None:
                conn.execute("CREATE DATABASE gateway")

    def alive(self, name: str) -> bool:
        service = self.services.get(name)
        if service is None or service.pid is None:
            return False
        if service.process is not None:
            return service.process.poll() is None
        try:
            os.kill(service.pid, 0)
        except ProcessLookupError:
            return False
        return not _is_zombie(service.pid)

    def running(self) -> list[str]:
        self.load()
        return [name for name in ORDER if self.alive(name)]

    def signal(self, name: str, sig: int) -> None:
        service = self.services[name]
        if service.pid is not None and self.alive(name):
            os.kill(service.pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL: what a crash looks like (no clean shutdown)."""
        self.signal(name, signal.SIGKILL)
        self._wait_gone(name, 10)

    def stop(self, name: str, timeout: float = 30) -> None:
        """The service's own clean stop; SIGKILL if it takes longer than ``timeout``."""
        self.signal(name, self.services[name].stop_signal)
        if not self._wait_gone(name, timeout):
            self.kill(name)

    def _wait_gone(self, name: str, timeout: float) -> bool:
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process is not None:
                try:
                    service.process.wait(0.05)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not self.alive(name):
                return True
            time.sleep(0.05)
        return not self.alive(name)

    def down(self) -> None:
        self.load()
        for name in reversed(ORDER):
            if name in self.services:
                self.stop(name)
        self._save()

    def tail(self, name: str, lines: int = 30) -> str:
        log = self.logs / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the state file ----------------------------------------------------------------------

    def _save(self) -> None:
        record = {
            "ports": self.ports,
            "funds_args": self.funds_args,
            "settings": self.extra,
            "pids": {n: s.pid for n, s in self.services.items() if self.alive(n)},
        }
        self.file.write_text(json.dumps(record, indent=2) + "\n")

    def load(self) -> None:
        if self.services or not self.file.exists():
            return
        record = json.loads(self.file.read_text())
        self.ports = {k: int(v) for k, v in record["ports"].items()}
        self.funds_args = list(record.get("funds_args", []))
        self.extra = dict(record.get("settings", {}))
        self._define()
        for name, pid in record["pids"].items():
            self.services[name].pid = int(pid)

    def describe(self) -> dict[str, Any]:
        self.load()
        return {
            "proxy": self.proxy_url,
            "instances": {n: self.instance_url(n) for n in INSTANCES},
            "funds": {c: self.fund_url(c) for c in FUNDS},
            "database": self.database_url,
            "redis": self.redis_url,
            "running": self.running(),
            "logs": str(self.logs),
        }


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state", default=str(ROOT / "var" / "stack"), help="state directory")
    args = parser.parse_args(argv)
    stack = Stack(Path(args.state))
    actions: dict[str, Callable[[], None]] = {
        "up": stack.up,
        "down": stack.down,
        "status": stack.load,
    }
    try:
        actions[args.command]()
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    if args.command != "down":
        print(json.dumps(stack.describe(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
