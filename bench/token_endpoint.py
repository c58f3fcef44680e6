"""Benchmark: the token endpoint (``POST /oauth/token``), gateway vs a bare form endpoint.

``python -m bench.token_endpoint`` (``--quick`` for a smoke run). Per database (SQLite in a
temporary directory, PostgreSQL in its own ``bench`` database when reachable) it makes a
development CA and a prescriber client with the real commands (``gateway certs init``, ``certs
issue``, ``clients register``), starts the real gateway and a bare FastAPI endpoint (parse the
urlencoded form, answer 200 with a JSON body) in their own uvicorn processes, and drives both from
the load-generator process.

Every request carries its own pre-signed ``private_key_jwt`` assertion (ES256, unique ``jti``:
a replay would be refused), signed just before each run so that none is older than its 60 s
lifetime allows. Measured: maximum throughput (closed loop) with the certificate chain in ``x5c``
(what ``gateway token`` sends) and without it (the registered certificate is used), and latency
at a fixed rate (open loop). Rate limits are switched off: they are not what is measured.
Key-value store: in-process (no ``GATEWAY_REDIS_URL``), as in the embedded default.

The helpers ``provision_client`` and ``fetch_token`` give other scenarios a real bearer token.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench import harness

SCENARIO = "token_endpoint"
PATH = "/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ID = "bench-prescriber"
NIHDI = harness.PRESCRIBER_NIHDI
DATABASES = ("sqlite", "postgresql")
# Informational; the issue states no target for the token endpoint. A client asks for a token
# every few minutes, so even a large deployment needs a few hundred tokens/s at most.
TARGETS = {"throughput_per_s": 200.0}
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}


# -- the bare endpoint -----------------------------------------------------------------------------

bare = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
_BARE_TOKEN = orjson.dumps(
    {"access_token": "x" * 600, "token_type": "Bearer", "expires_in": 600, "scope": "s"}
)


@bare.get("/healthz")
async def _healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@bare.post(PATH)
async def _bare_token(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode()))
    if form.get("grant_type") != "client_credentials":
        return Response(b'{"error":"unsupported_grant_type"}', status_code=400)
    return Response(
        _BARE_TOKEN,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def serve_bare(port: int) -> None:
    import uvicorn

    # The same arguments as ``gateway serve``, so the two differ only in the application.
    uvicorn.run(
        "bench.token_endpoint:bare",
        host=harness.HOST,
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


def bare_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.token_endpoint", "--serve-bare", "--port", str(port)]


# -- a registered client and its tokens (reusable by other scenarios) -------------------------------


@dataclass(frozen=True)
class ClientFiles:
    client_id: str
    key_path: Path
    cert_path: Path
    chain_path: Path


def provision_client(
    source: harness.GatewaySource,
    env: dict[str, str],
    workdir: Path,
    *,
    client_id: str = CLIENT_ID,
    role: str = "prescriber",
    nihdi: str | None = NIHDI,
) -> ClientFiles:
    """A development CA under ``workdir/pki`` (the gateway's trust directory when ``env`` sets
    ``GATEWAY_CA_DIR`` or ``GATEWAY_DATA_DIR`` to it) and one registered client, made with the
    real ``gateway`` commands. The database must be migrated."""
    ca_dir = workdir / "pki"
    out = workdir / "clients" / client_id
    source.run("certs", "init", "--ca-dir", str(ca_dir), env=env)
    issue = ["certs", "issue", "--ca-dir", str(ca_dir), "--cn", f"Bench {role}", "--out", str(out)]
    source.run(*issue, *(["--nihdi", nihdi] if nihdi else []), env=env)
    register = ["clients", "register", "--role", role, "--cert", str(out / "cert.pem")]
    source.run(*register, "--client-id", client_id, *(["--nihdi", nihdi] if nihdi else []), env=env)
    return ClientFiles(client_id, out / "key.pem", out / "cert.pem", out / "chain.pem")


def _signer(client: ClientFiles) -> Any:
    from cryptography import x509

    from gateway.auth.assertion import sign_assertion
    from gateway.auth.devpki import load_private_key

    key = load_private_key(client.key_path)
    chain = x509.load_pem_x509_certificates(client.chain_path.read_bytes())

    def sign(token_url: str, x5c: bool) -> str:
        return sign_assertion(
            key,
            client_id=client.client_id,
            token_url=token_url,
            certificates=chain if x5c else (),
        )

    return sign


def token_forms(client: ClientFiles, token_url: str, count: int, *, x5c: bool) -> list[str]:
    """``count`` urlencoded token requests, each with its own assertion."""
    sign = _signer(client)
    return [
        urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": sign(token_url, x5c),
            }
        )
        for _ in range(count)
    ]


def fetch_token(base_url: str, client: ClientFiles, scope: str | None = None) -> str:
    """A real access token from a running gateway (``Authorization: Bearer <it>``)."""
    form = token_forms(client, f"{base_url}{PATH}", 1, x5c=True)[0]
    if scope:
        form += "&" + urlencode({"scope": scope})
    request = urllib.request.Request(f"{base_url}{PATH}", data=form.encode(), headers=HEADERS)
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.loads(response.read())["access_token"]
    return token


# -- measurement -----------------------------------------------------------------------------------


def measure(
    server: harness.Server,
    client: ClientFiles,
    opts: argparse.Namespace,
    mode: str,
    *,
    x5c: bool,
    label: str,
) -> dict[str, Any]:
    budget = opts.max_rate if mode == "closed" else opts.rate * 1.2
    count = int(budget * (opts.warmup + opts.duration)) + 500
    started = time.perf_counter()
    bodies = token_forms(client, f"{server.base_url}{PATH}", count, x5c=x5c)
    signing_s = time.perf_counter() - started
    spec = harness.load_spec(server, PATH, bodies, HEADERS, opts, mode, expect_status=200)
    result = harness.run_load(spec)
    result["assertions_signed"] = count
    result["assertion_bytes"] = len(bodies[0])
    result["signing_s"] = round(signing_s, 2)
    # Past the pre-signed assertions the generator reuses them, and the gateway refuses replays
    # (the bare endpoint does not care).
    if label.startswith("gateway"):
        result["ran_out_of_assertions"] = result["requests"] > count
    print(f"  {label:14} {mode:6} {harness.one_line(result)}", flush=True)
    return result


def run_database(
    name: str, source: harness.GatewaySource, opts: argparse.Namespace
) -> dict[str, Any]:
    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url):
        gateway_port, bare_port = harness.free_port(), harness.free_port()
        env = harness.gateway_settings(
            source,
            url,
            {
                "GATEWAY_DATA_DIR": str(workdir),
                "GATEWAY_PUBLIC_BASE_URL": f"http://{harness.HOST}:{gateway_port}",
                "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
                "GATEWAY_TOKEN_RATE_LIMIT_PER_MINUTE": "0",
            },
        )
        env.pop("GATEWAY_INSECURE_DEV_AUTH", None)  # removed: the gateway refuses it
        harness.migrate(source, env)
        client = provision_client(source, env, workdir)
        with (
            harness.running(
                "gateway",
                source.serve_command(gateway_port),
                port=gateway_port,
                ready_path="/healthz",
                log_dir=workdir,
                env=env,
                cwd=source.root,
            ) as gateway,
            harness.running(
                "bare",
                bare_command(bare_port),
                port=bare_port,
                ready_path="/healthz",
                log_dir=workdir,
            ) as bare_server,
        ):
            fetch_token(gateway.base_url, client)  # fail fast, with the gateway's own answer
            bare_max = measure(bare_server, client, opts, "closed", x5c=True, label="bare")
            x5c_max = measure(gateway, client, opts, "closed", x5c=True, label="gateway x5c")
            plain_max = measure(gateway, client, opts, "closed", x5c=False, label="gateway no-x5c")
            bare_rate = measure(bare_server, client, opts, "open", x5c=True, label="bare")
            x5c_rate = measure(gateway, client, opts, "open", x5c=True, label="gateway x5c")
            gateway_log = gateway.log_tail(20)
    ratio = x5c_max["rate_per_s"] / bare_max["rate_per_s"] if bare_max["rate_per_s"] else None
    result: dict[str, Any] = {
        "gateway_x5c": {"max_throughput": x5c_max, "latency_at_rate": x5c_rate},
        "gateway_registered_cert": {"max_throughput": plain_max},
        "bare": {"max_throughput": bare_max, "latency_at_rate": bare_rate},
        "throughput_ratio_gateway_to_bare": None if ratio is None else round(ratio, 4),
    }
    if gateway_log.strip():
        result["gateway_log_tail"] = gateway_log
    return result


# -- report ----------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · {g['measured_source']} (`{g['measured_commit'][:12]}`) · "
        f"{m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        f"Token requests (`client_credentials`, `private_key_jwt`, ES256, one fresh assertion per "
        f"request). Max throughput: closed loop, {s['concurrency']} connections, "
        f"{s['duration_s']} s after {s['warmup_s']} s warm-up. Latency at rate: open loop at "
        f"{s['rate_per_s']:g}/s. One uvicorn worker, log level WARNING, in-process key-value "
        "store, rate limits off. `x5c`: the assertion carries the client certificate and the "
        "issuing CA (chain verified, then cached); `no-x5c`: the registered certificate is used. "
        "Bare: FastAPI parsing the form and answering a constant JSON token. The machine is "
        "shared, so figures are noisy.",
        "",
    ]
    for _name, result in harness.database_sections(data, lines):
        lines += [
            "| target | tokens/s | p50 ms | p99 ms | server CPU ms/req | errors |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        rows = [
            ("gateway, x5c", result["gateway_x5c"]["max_throughput"]),
            ("gateway, registered cert", result["gateway_registered_cert"]["max_throughput"]),
            ("bare endpoint", result["bare"]["max_throughput"]),
        ]
        for label, mx in rows:
            lines.append(
                f"| {label} | {harness.fmt(mx['rate_per_s'], 0)} "
                f"| {harness.fmt(mx['latency_ms']['p50'], 2)} "
                f"| {harness.fmt(mx['latency_ms']['p99'], 2)} "
                f"| {harness.fmt(mx.get('cpu', {}).get('server_cpu_ms_per_request'), 3)} "
                f"| {mx['errors']} |"
            )
        at = result["gateway_x5c"]["latency_at_rate"]
        ratio = result["throughput_ratio_gateway_to_bare"]
        lines += [
            "",
            f"At {s['rate_per_s']:g} tokens/s (open loop, x5c): p50 "
            f"{harness.fmt(at['latency_ms']['p50'], 2)} ms, p99 "
            f"{harness.fmt(at['latency_ms']['p99'], 2)} ms, {at['errors']} errors. "
            "Gateway/bare throughput: " + ("–" if ratio is None else f"{ratio:.1%}") + ".",
            "",
        ]
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop tokens per second")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--open-connections", type=int, default=32)
    parser.add_argument(
        "--max-rate",
        type=float,
        default=2500.0,
        help="closed loop: assertions are pre-signed for this many requests per second",
    )
    parser.add_argument("--databases", default=",".join(DATABASES), help="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=harness.DEFAULT_POSTGRES_URL)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--quick", action="store_true", help="2 s runs, not saved")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.serve_bare:
        serve_bare(opts.port)
        return 0
    with harness.gateway_source(None) as source:
        data: dict[str, Any] = {
            "scenario": SCENARIO,
            "date": harness.now_iso(),
            "git": harness.git_info(source),
            "machine": harness.machine_info(),
            "settings": {
                "duration_s": opts.duration,
                "warmup_s": opts.warmup,
                "concurrency": opts.concurrency,
                "rate_per_s": opts.rate,
                "open_connections": opts.open_connections,
                "client": opts.client,
                "gateway_log_level": "WARNING",
                "server": "uvicorn, 1 worker, loop/http auto (uvloop, httptools)",
                "assertion": "ES256, lifetime 60 s, EC P-256 client certificate",
                "kv_store": "in-process",
                "rate_limits": "off",
            },
            "targets": TARGETS,
            "databases": {},
        }
        data["databases"] = harness.each_database(
            opts.databases, lambda name: run_database(name, source, opts)
        )
    return harness.publish(SCENARIO, data, markdown(data), opts)


if __name__ == "__main__":
    sys.exit(main())
