"""Benchmark: the pharmacy workflow, fetch by RID and dispense, gateway vs bare endpoint (issue 6).

``python -m bench.pharmacy`` (``--quick`` for a smoke run; see bench/README.md). Per database
(SQLite in a temporary directory, PostgreSQL in its own ``bench_pharmacy`` database when
reachable) it starts the real gateway (``gateway serve``) and a bare FastAPI endpoint in their own
uvicorn processes, registers a prescriber and a pharmacist client with the real commands, has the
prescriber create the prescriptions over HTTP, then drives both targets from a load-generator
process:

1. **Fetch by RID**: a pharmacist scans a prescription's RID, ``GET
   /fhir/MedicationRequest?identifier=<RID>`` (a bare RID value, as from a barcode; RX-17.1: no
   consent or relationship needed), answered with a searchset Bundle holding the open
   prescription. Latency at a fixed rate (open loop, ``--rate``, default 200/s, and the target
   rate 150/s) and maximum throughput (closed loop). The bare endpoint answers the same GETs with
   a fixed small Bundle.
2. **Dispense**: ``POST /fhir/MedicationDispense`` by the pharmacist, referencing the prescription
   by RID, closed loop. A prescription is dispensed once (201; a second dispense is 409), so every
   request dispenses its own open prescription: the run needs more prescriptions than it can
   send (``--dispense-budget``), and any answer other than 201 is an error. The bare endpoint is
   ``bench.bare_app``'s (``orjson.loads`` of the body, then 201), also under the dispense path.

The fetched prescriptions and the dispensed ones are distinct, so every fetch sees an open one.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import harness
from bench.access_overhead import call
from bench.access_overhead import run_load as run_get_load
from bench.create_prescriptions import prescription_bodies, request_headers

SCENARIO = "pharmacy"
RX_PATH = "/fhir/MedicationRequest"
DISPENSE_PATH = "/fhir/MedicationDispense"
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_pharmacy"
PHARMACY_NIHDI = "06012345"
DELIVERED_CNK = "1234567"
# [A] From domain FIG-1: plan 50 creates/s at peak and at least 3x that for reads (a pharmacy
# lists, fetches and delivers each prescription), so fetch and dispense must each keep up at
# 150/s on the benchmark machine.
TARGETS = {
    "fetch_rate_per_s": 150.0,  # the fixed rate the fetch latency target is measured at
    "fetch_p99_ms": 50.0,  # open loop at that rate, at most, no errors
    "dispense_per_s": 150.0,  # closed loop, at least, no errors
}


# -- the bare endpoint (in its own process) ------------------------------------------------------


def bare(host: str, port: int) -> None:
    """``bench.bare_app`` with its POST handler also under the dispense path, and the fetch by
    RID answered with a fixed small searchset Bundle. Same uvicorn arguments as the gateway."""
    import uvicorn
    from fastapi.responses import Response

    from bench import bare_app

    bundle = orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 1,
            "entry": [
                {
                    "fullUrl": f"http://{host}:{port}{RX_PATH}/bare",
                    "resource": {"resourceType": "MedicationRequest", "id": "bare"},
                    "search": {"mode": "match"},
                }
            ],
        }
    )

    async def fetch() -> Response:
        return Response(bundle, media_type="application/fhir+json")

    bare_app.app.get(RX_PATH)(fetch)
    bare_app.app.post(DISPENSE_PATH)(bare_app.create)
    uvicorn.run(
        bare_app.app, host=host, port=port, workers=1, access_log=False, log_level="warning"
    )


# -- the data: open prescriptions, created over HTTP by the prescriber ---------------------------


def rid_of(resource: dict[str, Any]) -> str:
    from fhir_profiles import systems

    return str(next(i["value"] for i in resource["identifier"] if i["system"] == systems.RID))


def create_prescriptions(base: str, token: str, count: int, workers: int = 8) -> list[str]:
    """``count`` prescriptions (the demo bodies in turn, requested by the benchmark's prescriber);
    their RIDs, in creation order."""
    templates = [orjson.loads(body) for body in prescription_bodies()]

    def create(n: int) -> str:
        return rid_of(call(base, token, "POST", RX_PATH, templates[n % len(templates)]))

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(create, range(count)))


def fetch_paths(rids: list[str]) -> list[str]:
    return [f"{RX_PATH}?{urllib.parse.urlencode({'identifier': rid})}" for rid in rids]


def dispense_body(rid: str, handed_over: str) -> str:
    """One package of ``DELIVERED_CNK`` handed over for the prescription ``rid`` (as
    tests/dispenses/factories.py ``dispense(rid=...)``)."""
    from fhir_profiles import systems

    body = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "authorizingPrescription": [{"identifier": {"system": systems.RID, "value": rid}}],
        "medicationCodeableConcept": {"coding": [{"system": systems.CNK, "code": DELIVERED_CNK}]},
        "quantity": {"value": 1, "unit": "package"},
        "whenHandedOver": handed_over,
    }
    return orjson.dumps(body).decode()


def dispense_count(opts: argparse.Namespace) -> int:
    """Prescriptions for one closed-loop dispense run: the load generator sends request *i* with
    body ``i % len(bodies)``, and a reused body is a second dispense (409). So: more than the
    most the gateway could send at ``--dispense-budget`` per second, with half again as margin."""
    return int(opts.dispense_budget * (opts.warmup + opts.duration) * 1.5) + 1


# -- measuring -----------------------------------------------------------------------------------


def measure(
    server: harness.Server,
    path: str,
    bodies: list[str],
    headers: dict[str, str],
    opts: argparse.Namespace,
    mode: str,
    *,
    label: str,
) -> dict[str, Any]:
    """One load run; a GET run when ``path`` is empty (each "body" is then a path and query)."""
    get = not path
    spec = harness.load_spec(
        server, path, bodies, headers, opts, mode, expect_status=200 if get else 201
    )
    result = run_get_load(spec) if get else harness.run_load(spec)
    print(f"  {server.name:8} {label:14} {harness.one_line(result)}", flush=True)
    return result


def at_rate(opts: argparse.Namespace, rate: float) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(opts), "rate": rate})


def probe_fetch(server: harness.Server, path: str, token: str) -> None:
    """One fetch outside the measurement: 200 with the open prescription (not its status only)."""
    bundle = call(server.base_url, token, "GET", path)
    entries = bundle.get("entry") or []
    resource = entries[0]["resource"] if entries else {}
    if server.name == "gateway" and (bundle.get("total") != 1 or "subject" not in resource):
        raise RuntimeError(f"{server.name}: fetch by RID did not find the prescription: {bundle}")


def probe_dispense(server: harness.Server, body: str, headers: dict[str, str]) -> None:
    """A dispense outside the measurement (201), and for the gateway the same again (409)."""
    status, answer = harness.post_once(server, DISPENSE_PATH, body.encode(), headers)
    if status != 201:
        raise RuntimeError(f"{server.name}: expected 201, got {status}: {answer[:500]!r}")
    if server.name == "gateway":
        status, answer = harness.post_once(server, DISPENSE_PATH, body.encode(), headers)
        if status != 409:
            raise RuntimeError(f"gateway: a second dispense gave {status}: {answer[:500]!r}")


@contextlib.contextmanager
def started_gateway(
    url: str, source: harness.GatewaySource, workdir: Path
) -> Iterator[tuple[harness.Server, Any, Any]]:
    """The gateway on the (empty) database ``url``, migrated, with the prescriber's and the
    pharmacist's clients registered."""
    from bench.token_endpoint import provision_client

    if not source.has_oauth:
        raise RuntimeError("this benchmark needs a gateway with OAuth (pharmacist clients)")
    port = harness.free_port()
    env = harness.gateway_settings(source, url, harness.auth_settings(source, workdir, port))
    harness.migrate(source, env)
    prescriber = harness.provision_prescriber(source, env, workdir)
    pharmacist = provision_client(
        source, env, workdir, client_id="bench-pharmacist", role="pharmacist", nihdi=PHARMACY_NIHDI
    )
    with harness.running(
        "gateway",
        source.serve_command(port),
        port=port,
        ready_path="/healthz",
        log_dir=workdir,
        env=env,
        cwd=source.root,
    ) as gateway:
        yield gateway, prescriber, pharmacist


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    from bench.token_endpoint import fetch_token

    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url):
        bare_port = harness.free_port()
        bare_argv = [sys.executable, "-m", f"bench.{SCENARIO}", "bare", "--port", str(bare_port)]
        with (
            started_gateway(url, source, workdir) as (gateway, prescriber, pharmacist),
            harness.running(
                "bare", bare_argv, port=bare_port, ready_path="/healthz", log_dir=workdir
            ) as bare_server,
        ):
            to_dispense = dispense_count(opts) + 1  # one more for the probe
            total = opts.fetch_prescriptions + to_dispense
            print(f"  creating {total} prescriptions", flush=True)
            started = time.perf_counter()
            rids = create_prescriptions(
                gateway.base_url, fetch_token(gateway.base_url, prescriber), total
            )
            fill_s = time.perf_counter() - started
            print(f"  created in {fill_s:.1f} s ({total / fill_s:.0f}/s)", flush=True)
            # A fresh token (valid 10 min) for the runs; the bare endpoint ignores it.
            token = fetch_token(gateway.base_url, pharmacist)
            auth = {"Authorization": f"Bearer {token}"}
            paths = fetch_paths(rids[: opts.fetch_prescriptions])
            get_headers = {"Accept": "application/fhir+json", **auth}
            for server in (gateway, bare_server):
                probe_fetch(server, paths[0], token)
            # Interleaved, so slow drifts in the machine's other load hit both targets alike.
            target_rate = TARGETS["fetch_rate_per_s"]
            rate_label = f"open {opts.rate:g}/s"
            fetch: dict[str, dict[str, Any]] = {"gateway": {}, "bare": {}}
            for key, mode, run_opts, label in (
                ("max_throughput", "closed", opts, "closed"),
                ("latency_at_rate", "open", opts, rate_label),
            ):
                for server in (bare_server, gateway):
                    fetch[server.name][key] = measure(
                        server, "", paths, get_headers, run_opts, mode, label=label
                    )
            if opts.rate != target_rate:
                fetch["gateway"]["latency_at_target_rate"] = measure(
                    gateway,
                    "",
                    paths,
                    get_headers,
                    at_rate(opts, target_rate),
                    "open",
                    label=f"open {target_rate:g}/s",
                )
            else:
                fetch["gateway"]["latency_at_target_rate"] = fetch["gateway"]["latency_at_rate"]

            handed_over = datetime.now(UTC).isoformat(timespec="seconds")
            bodies = [dispense_body(rid, handed_over) for rid in rids[opts.fetch_prescriptions :]]
            post_headers = request_headers(auth)
            for server in (gateway, bare_server):
                probe_dispense(server, bodies[0], post_headers)
            bodies = bodies[1:]
            dispense = {
                server.name: {
                    "max_throughput": measure(
                        server, DISPENSE_PATH, bodies, post_headers, opts, "closed", label="closed"
                    )
                }
                for server in (bare_server, gateway)
            }
            gateway_log = gateway.log_tail(20)
    result: dict[str, Any] = {
        "fill": {
            "prescriptions": total,
            "fetched": opts.fetch_prescriptions,
            "dispense_bodies": len(bodies),
            "seconds": round(fill_s, 1),
        },
        "fetch_by_rid": {**fetch, **ratio(fetch)},
        "dispense": {**dispense, **ratio(dispense)},
    }
    sent = dispense["gateway"]["max_throughput"]["rate_per_s"] * (opts.warmup + opts.duration)
    # An estimate (the window's rate over warm-up and window): past it, bodies were reused (409).
    result["dispense"]["bodies_reused"] = sent >= len(bodies)
    result["targets_met"] = targets_met(result)
    if gateway_log.strip():
        result["gateway_log_tail"] = gateway_log
    return result


def ratio(figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    gateway = figures["gateway"]["max_throughput"]["rate_per_s"]
    bare_rate = figures["bare"]["max_throughput"]["rate_per_s"]
    return {
        "throughput_ratio_gateway_to_bare": round(gateway / bare_rate, 4) if bare_rate else None
    }


def targets_met(result: dict[str, Any]) -> dict[str, bool]:
    at_target = result["fetch_by_rid"]["gateway"]["latency_at_target_rate"]
    p99 = at_target["latency_ms"]["p99"]
    dispensed = result["dispense"]["gateway"]["max_throughput"]
    return {
        "fetch_p99_at_target_rate": p99 is not None
        and p99 < TARGETS["fetch_p99_ms"]
        and at_target["errors"] == 0,
        "dispense_throughput": dispensed["rate_per_s"] >= TARGETS["dispense_per_s"]
        and dispensed["errors"] == 0,
    }


# -- report ----------------------------------------------------------------------------------------


def _cpu(result: dict[str, Any], key: str, digits: int = 3) -> str:
    return harness.fmt(result.get("cpu", {}).get(key), digits)


def _noise(result: dict[str, Any]) -> str:
    return f"{_cpu(result, 'other_cores_busy', 2)} / {_cpu(result, 'steal_cores', 2)}"


def _lat(result: dict[str, Any], p: str) -> str:
    return harness.fmt(result["latency_ms"][p], 2)


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def markdown(data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    rate = f"{s['rate_per_s']:g}/s"
    target_rate = f"{TARGETS['fetch_rate_per_s']:g}/s"
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {g['measured_source']}"
        + ("" if "git archive" in g["measured_source"] else f" on `{g['measured_commit'][:12]}`")
        + f" · {m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        "Fetch by RID: a pharmacist's `GET /fhir/MedicationRequest?identifier=<RID>` (bare RID, no "
        f"consent or relationship: RX-17.1) over {s['fetch_prescriptions']} open prescriptions, "
        "answered with a searchset Bundle; the bare endpoint answers a fixed small Bundle. "
        f"Closed loop: {s['concurrency']} connections; open loop: request *i* due at start + "
        f"i/rate, latency from its due time ({s['open_connections']} connections). Dispense: "
        "`POST /fhir/MedicationDispense` by RID, closed loop, each request on its own open "
        "prescription (bodies never reused: sized for "
        f"{s['dispense_budget_per_s']:g} dispenses/s); the bare endpoint parses the body and "
        f"answers 201. Each run: {s['duration_s']} s after {s['warmup_s']} s warm-up. Errors = "
        "answers other than 200 (fetch) or 201 (dispense), timeouts, connection failures, "
        f"requests never sent. Authentication: {s['auth']}; gateway log level "
        f"{s['gateway_log_level']}. Server CPU ms/req is the steadiest figure on this shared "
        "2-core machine; other load (cores busy with neither server nor generator: other "
        "people's work, the database server) and steal are given per run.",
        "",
    ]
    for _name, result in harness.database_sections(data, lines):
        fetch, dispense, fill = result["fetch_by_rid"], result["dispense"], result["fill"]
        lines += [
            f"{fill['prescriptions']} prescriptions created over HTTP beforehand in "
            f"{fill['seconds']:g} s.",
            "",
            "### fetch by RID",
            "",
            "| target | req/s | p50 ms | p99 ms | server CPU ms/req | other load / steal "
            f"| p50 ms @{rate} | p95 ms @{rate} | p99 ms @{rate} | achieved/s "
            f"| server CPU ms/req @{rate} | other load / steal @{rate} | errors |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for target in ("gateway", "bare"):
            mx, at = fetch[target]["max_throughput"], fetch[target]["latency_at_rate"]
            lines.append(
                f"| {target} | {harness.fmt(mx['rate_per_s'], 0)} | {_lat(mx, 'p50')} "
                f"| {_lat(mx, 'p99')} | {_cpu(mx, 'server_cpu_ms_per_request')} | {_noise(mx)} "
                f"| {_lat(at, 'p50')} | {_lat(at, 'p95')} | {_lat(at, 'p99')} "
                f"| {harness.fmt(at['rate_per_s'], 0)} "
                f"| {_cpu(at, 'server_cpu_ms_per_request')} | {_noise(at)} "
                f"| {mx['errors']} + {at['errors']} |"
            )
        tr = fetch["gateway"]["latency_at_target_rate"]
        lines += [
            "",
            f"Gateway at the target rate {target_rate}: p50 {_lat(tr, 'p50')} ms, p95 "
            f"{_lat(tr, 'p95')} ms, p99 {_lat(tr, 'p99')} ms, {harness.fmt(tr['rate_per_s'], 0)}/s "
            f"achieved, server {_cpu(tr, 'server_cpu_ms_per_request')} ms CPU/req, "
            f"{tr['errors']} errors, other load / steal {_noise(tr)}. Closed-loop throughput: "
            f"{_percent(fetch['throughput_ratio_gateway_to_bare'])} of bare.",
            "",
            "### dispense",
            "",
            "| target | dispenses/s | p50 ms | p95 ms | p99 ms | server CPU ms/req "
            "| other load / steal | errors |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for target in ("gateway", "bare"):
            mx = dispense[target]["max_throughput"]
            lines.append(
                f"| {target} | {harness.fmt(mx['rate_per_s'], 0)} | {_lat(mx, 'p50')} "
                f"| {_lat(mx, 'p95')} | {_lat(mx, 'p99')} "
                f"| {_cpu(mx, 'server_cpu_ms_per_request')} | {_noise(mx)} | {mx['errors']} |"
            )
        gw = dispense["gateway"]["max_throughput"]
        outcomes = ", ".join(f"{k}: {v}" for k, v in gw["outcomes"].items())
        lines += [
            "",
            f"Gateway outcomes: {outcomes}"
            + (
                " (bodies were reused: raise --dispense-budget)"
                if dispense["bodies_reused"]
                else ""
            )
            + f". Throughput: {_percent(dispense['throughput_ratio_gateway_to_bare'])} of bare.",
            "",
        ]
        met = result["targets_met"]
        lines += [
            "Targets: "
            + "; ".join(
                [
                    f"fetch by RID p99 < {TARGETS['fetch_p99_ms']:g} ms at {target_rate}: "
                    f"{harness.fmt(tr['latency_ms']['p99'], 1)} ms "
                    f"{_mark(met['fetch_p99_at_target_rate'])}",
                    f"≥ {TARGETS['dispense_per_s']:g} dispenses/s: "
                    f"{harness.fmt(gw['rate_per_s'], 0)} {_mark(met['dispense_throughput'])}",
                ]
            ),
            "",
        ]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{SCENARIO}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    harness.common_options(parser, DATABASES, postgres_url=DEFAULT_POSTGRES_URL, rate=200.0)
    parser.add_argument(
        "--fetch-prescriptions", type=int, default=200, help="open prescriptions fetched by RID"
    )
    parser.add_argument(
        "--dispense-budget",
        type=float,
        default=300.0,
        help="the most dispenses/s expected: prescriptions made = this x (warmup + duration) x 1.5",
    )
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    if opts.quick:
        opts.fetch_prescriptions = 50
    opts.client = "raw"
    return opts


def run(opts: argparse.Namespace, source: harness.GatewaySource) -> dict[str, Any]:
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
            "fetch_prescriptions": opts.fetch_prescriptions,
            "dispense_budget_per_s": opts.dispense_budget,
            "client": opts.client,
            "gateway_log_level": "WARNING",
            "auth": "OAuth bearer tokens (client_credentials, private_key_jwt), rate limits off",
            "server": "uvicorn, 1 worker, loop/http auto (uvloop, httptools)",
        },
        "targets": TARGETS,
        "databases": {},
    }
    data["databases"] = harness.each_database(
        opts.databases, lambda name: run_database(name, opts, source)
    )
    return data


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bare":
        sub = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO} bare")
        sub.add_argument("--host", default=harness.HOST)
        sub.add_argument("--port", type=int, required=True)
        parsed = sub.parse_args(args[1:])
        bare(parsed.host, parsed.port)
        return 0
    opts = parse_args(args)
    with harness.gateway_source(opts.git_ref) as source:
        print(f"gateway: {source.label}", flush=True)
        data = run(opts, source)
    return harness.publish(SCENARIO, data, markdown(data), opts)


if __name__ == "__main__":
    sys.exit(main())
