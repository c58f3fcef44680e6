"""Benchmark: creating prescriptions (``POST /fhir/MedicationRequest``), gateway vs bare endpoint.

``python -m bench.create_prescriptions`` (see bench/README.md). Per database (SQLite in a temporary
directory, PostgreSQL in its own ``bench`` database when reachable) it starts the real gateway and
the bare FastAPI endpoint in their own uvicorn processes and drives both from a load-generator
process: maximum throughput (closed loop) and latency at a fixed rate (open loop).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import harness, profiling

SCENARIO = "create_prescriptions"
PATH = "/fhir/MedicationRequest"
# From the issue: the create path must reach these on the benchmark machine.
TARGETS = {
    "throughput_per_s": 1000.0,  # closed loop, creates/s, at least
    "p99_ms_at_rate": 25.0,  # open loop at the target rate, at most
    "ratio_to_bare": 0.5,  # gateway creates/s over the bare endpoint's, at least
}
DATABASES = ("sqlite", "postgresql")


def request_headers(auth: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json", **auth}


def prescription_bodies() -> list[str]:
    """The demo prescriptions, all requested by the benchmark's prescriber and without the demo
    identifier (unique in the database: a second create with it is 409). Both targets get these."""
    from gateway.demo_data import prescriptions

    now = datetime.now(UTC)
    bodies = []
    for _local_id, _author, body in prescriptions(now):
        body.pop("identifier", None)
        body["requester"]["identifier"]["value"] = harness.PRESCRIBER_NIHDI
        bodies.append(orjson.dumps(body).decode())
    return bodies


def probe(server: harness.Server, body: str, headers: dict[str, str]) -> None:
    status, answer = harness.post_once(server, PATH, body.encode(), headers)
    if status != 201:
        raise RuntimeError(f"{server.name}: expected 201, got {status}: {answer[:500]!r}")


def measure(
    server: harness.Server,
    bodies: list[str],
    headers: dict[str, str],
    opts: argparse.Namespace,
    mode: str,
) -> Any:
    spec = harness.load_spec(server, PATH, bodies, headers, opts, mode)
    result = harness.run_load(spec)
    print(f"  {server.name:8} {mode:6} {harness.one_line(result)}", flush=True)
    return result


@contextlib.contextmanager
def started_gateway(
    url: str,
    source: harness.GatewaySource,
    opts: argparse.Namespace,
    workdir: Path,
    *,
    wrapper: Sequence[str] = (),
) -> Iterator[tuple[harness.Server, dict[str, str]]]:
    """The gateway serving the (empty) database ``url``, migrated first (``wrapper`` goes before
    ``-m gateway.cli``, e.g. a profiler), and the request headers of an authenticated prescriber."""
    port = harness.free_port()
    env = harness.gateway_settings(source, url, harness.auth_settings(source, workdir, port))
    harness.migrate(source, env)
    client = harness.provision_prescriber(source, env, workdir)
    argv = source.serve_command(port)
    argv = [argv[0], *wrapper, *argv[1:]]
    with harness.running(
        "gateway", argv, port=port, ready_path="/healthz", log_dir=workdir, env=env, cwd=source.root
    ) as gateway:
        yield gateway, request_headers(harness.auth_headers(gateway, client))


def run_database(
    name: str, bodies: list[str], opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    with (
        harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url),
        started_gateway(url, source, opts, workdir) as (gateway, headers),
        harness.bare_endpoint(workdir) as bare,
    ):
        for server in (gateway, bare):
            probe(server, bodies[0], headers)
        # Interleaved, so slow drifts in the machine's other load hit both targets alike.
        # Both get the same bodies and headers (the bare endpoint ignores the credentials).
        bare_max = measure(bare, bodies, headers, opts, "closed")
        gateway_max = measure(gateway, bodies, headers, opts, "closed")
        bare_rate = measure(bare, bodies, headers, opts, "open")
        gateway_rate = measure(gateway, bodies, headers, opts, "open")
        gateway_log = gateway.log_tail(20)
    ratio = gateway_max["rate_per_s"] / bare_max["rate_per_s"] if bare_max["rate_per_s"] else None
    result: dict[str, Any] = {
        "gateway": {"max_throughput": gateway_max, "latency_at_rate": gateway_rate},
        "bare": {"max_throughput": bare_max, "latency_at_rate": bare_rate},
        "throughput_ratio_gateway_to_bare": None if ratio is None else round(ratio, 4),
    }
    result["targets_met"] = targets_met(result)
    if gateway_log.strip():
        result["gateway_log_tail"] = gateway_log
    return result


def targets_met(result: dict[str, Any]) -> dict[str, bool]:
    gateway = result["gateway"]
    p99 = gateway["latency_at_rate"]["latency_ms"]["p99"]
    ratio = result["throughput_ratio_gateway_to_bare"]
    return {
        "throughput": gateway["max_throughput"]["rate_per_s"] >= TARGETS["throughput_per_s"]
        and gateway["max_throughput"]["errors"] == 0,
        "p99_at_rate": p99 is not None
        and p99 < TARGETS["p99_ms_at_rate"]
        and gateway["latency_at_rate"]["errors"] == 0,
        "ratio_to_bare": ratio is not None and ratio >= TARGETS["ratio_to_bare"],
    }


# -- report ----------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    s = data["settings"]
    m = data["machine"]
    g = data["git"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {g['measured_source']}"
        + ("" if "git archive" in g["measured_source"] else f" on `{g['measured_commit'][:12]}`")
        + f" · {m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        f"Max throughput: closed loop, {s['concurrency']} connections, {s['duration_s']} s after "
        f"{s['warmup_s']} s warm-up. Latency at rate: open loop at {s['rate_per_s']:g}/s "
        f"({s['open_connections']} connections) for {s['duration_s']} s after {s['warmup_s']} s "
        "warm-up, measured from each request's scheduled send time. Load generator: "
        f"`{s['client']}` client in its own process. Gateway log level {s['gateway_log_level']}; "
        f"authentication: {s['auth']}. Errors (closed + open) = answers other than 201, timeouts, "
        "connection failures, requests never sent. The machine is shared: other load is CPU used "
        "by neither server nor generator (the database server included), steal is CPU the "
        "hypervisor gave elsewhere, both in cores during the closed-loop window; figures are noisy.",
        "",
    ]
    for _name, result in harness.database_sections(data, lines):
        lines += [
            "| target | creates/s | p50 ms | p95 ms | p99 ms | server CPU ms/req "
            f"| p50 ms @{s['rate_per_s']:g}/s | p99 ms @{s['rate_per_s']:g}/s | achieved/s "
            "| errors | other load / steal |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for target in ("gateway", "bare"):
            mx = result[target]["max_throughput"]
            at = result[target]["latency_at_rate"]
            lines.append(
                f"| {target} | {harness.fmt(mx['rate_per_s'], 0)} "
                f"| {harness.fmt(mx['latency_ms']['p50'], 2)} "
                f"| {harness.fmt(mx['latency_ms']['p95'], 2)} "
                f"| {harness.fmt(mx['latency_ms']['p99'], 2)} "
                f"| {harness.fmt(mx.get('cpu', {}).get('server_cpu_ms_per_request'), 3)} "
                f"| {harness.fmt(at['latency_ms']['p50'], 2)} "
                f"| {harness.fmt(at['latency_ms']['p99'], 2)} "
                f"| {harness.fmt(at['rate_per_s'], 0)} "
                f"| {mx['errors']} + {at['errors']} "
                f"| {harness.fmt(mx.get('cpu', {}).get('other_cores_busy'), 2)} / "
                f"{harness.fmt(mx.get('cpu', {}).get('steal_cores'), 2)} |"
            )
        met = result["targets_met"]
        gw = result["gateway"]
        ratio = result["throughput_ratio_gateway_to_bare"]
        lines += [
            "",
            "Targets: "
            + "; ".join(
                [
                    f"≥ {TARGETS['throughput_per_s']:,.0f} creates/s: "
                    f"{harness.fmt(gw['max_throughput']['rate_per_s'], 0)} "
                    f"{_mark(met['throughput'])}",
                    f"p99 < {TARGETS['p99_ms_at_rate']:g} ms at {s['rate_per_s']:g}/s: "
                    f"{harness.fmt(gw['latency_at_rate']['latency_ms']['p99'], 1)} ms "
                    f"{_mark(met['p99_at_rate'])}",
                    f"≥ {TARGETS['ratio_to_bare']:.0%} of bare: "
                    + ("–" if ratio is None else f"{ratio:.1%}")
                    + f" {_mark(met['ratio_to_bare'])}",
                ]
            ),
            "",
        ]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


# -- profile ---------------------------------------------------------------------------------------


def profile(bodies: list[str], opts: argparse.Namespace, source: harness.GatewaySource) -> Path:
    """Run the gateway under pyinstrument (``pip install pyinstrument``; not a dependency) through
    one closed-loop measurement on the first database; write time by component and the tree."""
    name = opts.databases[0]
    out: Path = opts.results_dir / f"{SCENARIO}.profile.md"
    with tempfile.TemporaryDirectory(prefix=f"bench-{SCENARIO}-profile-") as tmp:
        workdir = Path(tmp)
        session = workdir / "profile.pyisession"
        wrapper = [*profiling.PROFILER_WRAPPER, f"--outfile={session}"]
        url = harness.database_url(name, workdir, opts.postgres_url)
        with started_gateway(url, source, opts, workdir, wrapper=wrapper) as (gateway, headers):
            probe(gateway, bodies[0], headers)
            result = measure(gateway, bodies, headers, opts, "closed")
        # Written when the profiled gateway has exited. The load was steady, so the requests
        # served during warm-up and window are about the window's rate times their length.
        served = round(result["rate_per_s"] * (opts.warmup + opts.duration)) + 1
        text = profiling.report(session, served)
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    header = (
        f"# {SCENARIO}: profile\n\n"
        f"{now()} · gateway: {source.label}, {name} · pyinstrument, closed loop, "
        f"{opts.concurrency} connections, {opts.duration} s after {opts.warmup} s warm-up: "
        f"{result['rate_per_s']} creates/s under the profiler (which about halves the rate), "
        f"about {served} requests served. Per-request figures are inflated by the profiler "
        "alike; read them as shares.\n\n"
    )
    out.write_text(header + text)
    return out


def now() -> str:
    return harness.now_iso()


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    harness.common_options(parser, DATABASES)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load client")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: profile the gateway under pyinstrument on the first database",
    )
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    with harness.gateway_source(opts.git_ref) as source:
        print(f"gateway: {source.label}", flush=True)
        if opts.profile:
            print(f"profile written to {profile(prescription_bodies(), opts, source)}")
            return 0
        data = run(opts, source)
    return harness.publish(SCENARIO, data, markdown(data), opts)


def run(opts: argparse.Namespace, source: harness.GatewaySource) -> dict[str, Any]:
    bodies = prescription_bodies()
    data: dict[str, Any] = {
        "scenario": SCENARIO,
        "date": now(),
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
            "auth": (
                "OAuth bearer token (client_credentials, private_key_jwt), rate limits off"
                if source.has_oauth
                else "development identity header"
            ),
            "server": "uvicorn, 1 worker, loop/http auto (uvloop, httptools)",
            "bodies": len(bodies),
            "body_bytes": [len(b) for b in bodies],
        },
        "targets": TARGETS,
        "databases": {},
    }
    data["databases"] = harness.each_database(
        opts.databases, lambda name: run_database(name, bodies, opts, source)
    )
    return data


if __name__ == "__main__":
    sys.exit(main())
