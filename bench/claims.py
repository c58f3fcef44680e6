"""Benchmark: eAttest claims, intake throughput and end-to-end delivery time with healthy funds.

``python -m bench.claims`` (``--quick`` for a smoke run). Per database (SQLite in a temporary
directory, PostgreSQL in its own ``bench_claims`` database when reachable) it starts, each in its
own process: the mock funds 100 and 300 (``python -m mutualities``, no faults, settling 1 s after
acknowledging), the real gateway (uvicorn, ``gateway serve``), the forwarder (inside the API
process on SQLite, the embedded default; a ``gateway worker`` process on PostgreSQL), and the bare
FastAPI endpoint; the load generator drives them from another process.

1. **Intake throughput**: closed loop, ``POST /fhir/Claim`` (202), against the bare endpoint's 201
   in the same run. Claims pile up in the outbox; the time the forwarder takes to drain them gives
   the delivery throughput.
2. **End-to-end delivery time**: open loop at ``--rate`` claims/s (default 20/s, twice the
   FIG-1 eAttest peak of 10/s); per claim, from the moment the gateway stored it to the moment
   the fund's acknowledgement was stored (``claims.created_at`` -> the submission's
   ``finished_at``), and to the moment it was settled (the fund settles after 1 s; the gateway
   polls the settlement feed every ``GATEWAY_SETTLEMENT_POLL_SECONDS``, 5 s by default).

Every claim is unique (its own patient and request key, a ``Claim.identifier``), so none is a
replay or a duplicate. Gateway settings are the defaults except the rate limits (off) and the log
level (WARNING).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import harness
from bench.loadgen import percentile

SCENARIO = "claims"
PATH = "/fhir/Claim"
BARE_PATH = "/fhir/MedicationRequest"  # bench.bare_app: parse the JSON body, answer 201
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_claims"
FUNDS = ("100", "300")
# [A] From domain FIG-1 (eAttest: plan 10 claims/s at peak): intake with a 5x margin while the
# forwarder delivers on the same machine, and a provider sees the fund's acknowledgement within
# seconds at twice the peak.
TARGETS = {"intake_per_s": 50.0, "delivery_p99_s_at_rate": 2.0}
_NOMENCLATURE = (
    "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/be-ns-nihdi-nomenclature"
)
_SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
_NIHDI = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi-professional"
_INSURER = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/insurancenumber"
_TYPES = (
    "https://www.ehealth.fgov.be/standards/fhir/eattestation/CodeSystem/be-cs-eattestation-types"
)
_OWN_IDS = "urn:oid:1.3.6.1.4.1.58854.1.1"  # the provider software's own claim numbers [A]


def ssins(count: int, first: date = date(1930, 1, 1)) -> list[str]:
    """Made-up SSINs with valid check digits (ID-2), one birth day each (births before 2000)."""
    found: list[str] = []
    day = first
    while len(found) < count:
        for sequence in (1, 3, 5, 7):
            head = f"{day:%y%m%d}{sequence:03d}"
            found.append(f"{head}{97 - int(head) % 97:02d}")
        day += timedelta(days=1)
    return found[:count]


def claim_body(n: int, ssin: str, fund: str, today: str, phase: str) -> str:
    fee = 30.03
    return orjson.dumps(
        {
            "resourceType": "Claim",
            "identifier": [{"system": _OWN_IDS, "value": f"bench-{phase}-{n}"}],
            "subType": {"coding": [{"system": _TYPES, "code": "generalpractice"}]},
            "patient": {"identifier": {"system": _SSIN, "value": ssin}},
            "created": today,
            "provider": {"identifier": {"system": _NIHDI, "value": harness.PRESCRIBER_NIHDI}},
            "insurer": {"identifier": {"system": _INSURER, "value": fund}},
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {"coding": [{"system": _NOMENCLATURE, "code": "101032"}]},
                    "servicedDate": today,
                    "quantity": {"value": 1},
                    "unitPrice": {"value": fee, "currency": "EUR"},
                    "net": {"value": fee, "currency": "EUR"},
                }
            ],
            "total": {"value": fee, "currency": "EUR"},
        }
    ).decode()


@contextlib.contextmanager
def started(
    opts: argparse.Namespace, name: str, workdir: Path, source: harness.GatewaySource
) -> Iterator[dict[str, Any]]:
    """Funds, gateway (and worker), bare endpoint; yields them with the database URL and headers."""
    url = harness.database_url(name, workdir, opts.postgres_url)
    people = ssins(opts.patients)
    members = [
        {"ssin": s, "fund": FUNDS[i % 2], "preferential": False} for i, s in enumerate(people)
    ]
    (workdir / "members.json").write_text(json.dumps({"members": members}))
    funds_port, gateway_port = harness.free_port(), harness.free_port()
    fund_urls = {code: f"http://{harness.HOST}:{funds_port}/funds/{code}" for code in FUNDS}
    extra = {
        **harness.auth_settings(source, workdir, gateway_port),
        "GATEWAY_MUTUALITY_URLS": ",".join(f"{c}={u}" for c, u in fund_urls.items()),
        "GATEWAY_WORKER_IN_PROCESS": "true" if name == "sqlite" else "false",
    }
    env = harness.gateway_settings(source, url, extra)
    harness.migrate(source, env)
    client = harness.provision_prescriber(source, env, workdir)
    funds_argv = [sys.executable, "-m", "mutualities", "--port", str(funds_port)]
    funds_argv += [arg for code in FUNDS for arg in ("--code", code)]
    funds_argv += ["--data-dir", str(workdir / "funds"), "--members", str(workdir / "members.json")]
    funds_argv += ["--settle-after-seconds", "1", "--log-level", "WARNING"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            harness.running(
                "funds", funds_argv, port=funds_port, ready_path="/healthz", log_dir=workdir
            )
        )
        gateway = stack.enter_context(
            harness.running(
                "gateway",
                source.serve_command(gateway_port),
                port=gateway_port,
                ready_path="/healthz",
                log_dir=workdir,
                env=env,
                cwd=source.root,
            )
        )
        if name != "sqlite":
            worker_log = (workdir / "worker.log").open("wb")
            stack.callback(worker_log.close)
            worker = subprocess.Popen(
                source.command("worker"),
                cwd=source.root,
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(harness.Server("worker", worker, 0, workdir / "worker.log").stop)
        bare = stack.enter_context(harness.bare_endpoint(workdir))
        headers = {
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
            **harness.auth_headers(gateway, client),
        }
        yield {
            "url": url,
            "gateway": gateway,
            "bare": bare,
            "headers": headers,
            "people": people,
        }


class Ledger:
    """Reads the gateway's claim bookkeeping (``claims``, ``claim_jobs``) with a plain engine."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        from gateway.db import sync_url

        self.engine = create_engine(sync_url(url))

    def close(self) -> None:
        self.engine.dispose()

    def states(self) -> dict[str, int]:
        from sqlalchemy import func, select

        from gateway.storage.tables import claims

        with self.engine.connect() as conn:
            rows = conn.execute(select(claims.c.state, func.count()).group_by(claims.c.state))
            return {state: int(n) for state, n in rows.all()}

    def wait(self, done: set[str], total: int, limit_s: float) -> float | None:
        """Seconds until ``total`` claims are in ``done`` states, or None after ``limit_s``."""
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            if sum(n for state, n in self.states().items() if state in done) >= total:
                return time.monotonic() - began
            time.sleep(0.1)
        return None

    def times(self, since: datetime) -> dict[str, list[float]]:
        """Per claim created after ``since``: seconds to the stored acknowledgement and, once
        settled, to the settlement."""
        from sqlalchemy import select

        from gateway.storage.tables import claim_jobs, claims

        def aware(value: datetime) -> datetime:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value

        query = (
            select(
                claims.c.created_at, claims.c.updated_at, claims.c.state, claim_jobs.c.finished_at
            )
            .join(claim_jobs, claim_jobs.c.claim_id == claims.c.claim_id)
            .where(claims.c.created_at >= since, claim_jobs.c.kind == "submit")
        )
        delivered, settled = [], []
        with self.engine.connect() as conn:
            for created, updated, state, finished in conn.execute(query).all():
                if finished is not None:
                    delivered.append((aware(finished) - aware(created)).total_seconds())
                if state == "settled":
                    settled.append((aware(updated) - aware(created)).total_seconds())
        return {"delivered": delivered, "settled": settled}


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


def load(
    server: harness.Server,
    path: str,
    bodies: list[str],
    headers: dict[str, str],
    opts: argparse.Namespace,
    mode: str,
    expect: int,
) -> dict[str, Any]:
    spec = harness.load_spec(server, path, bodies, headers, opts, mode, expect_status=expect)
    result = harness.run_load(spec)
    lat = result["latency_ms"]
    print(
        f"  {server.name:8} {mode:6} {result['rate_per_s']:8.1f}/s  p50 {harness.fmt(lat['p50'], 2)}"
        f"  p99 {harness.fmt(lat['p99'], 2)} ms  errors {result['errors']}",
        flush=True,
    )
    return result


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{SCENARIO}-{name}-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        try:
            running = stack.enter_context(started(opts, name, Path(tmp), source))
        except Exception as exc:  # PostgreSQL not reachable: note it, carry on with the rest
            return {"skipped": f"{type(exc).__name__}: {exc}".strip()[:300]}
        return measure_database(running, opts)


def measure_database(running: dict[str, Any], opts: argparse.Namespace) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    people: list[str] = running["people"]
    closed_n = opts.closed_bodies
    closed = [claim_body(n, people[n], FUNDS[n % 2], today, "c") for n in range(closed_n)]
    opened = [
        claim_body(n, people[closed_n + 1 + n], FUNDS[(closed_n + 1 + n) % 2], today, "o")
        for n in range(opts.patients - closed_n - 1)
    ]
    probe = claim_body(0, people[closed_n], FUNDS[closed_n % 2], today, "probe")
    gateway, bare, headers = running["gateway"], running["bare"], running["headers"]
    status, answer = harness.post_once(gateway, PATH, probe.encode(), headers)
    if status != 202:
        raise RuntimeError(f"gateway: expected 202, got {status}: {answer[:500]!r}")
    ledger = Ledger(running["url"])
    try:
        if ledger.wait({"settled"}, 1, 60) is None:
            raise RuntimeError("the probe claim was not settled within 60 s")
        bare_max = load(bare, BARE_PATH, closed, headers, opts, "closed", 201)
        began = time.monotonic()
        intake = load(gateway, PATH, closed, headers, opts, "closed", 202)
        taken = sum(ledger.states().values())
        drained = ledger.wait({"delivered", "settled"}, taken, 600)
        drain_s = None if drained is None else time.monotonic() - began
        # The open loop starts on a quiet system: the backlog is settled too.
        settled_all = ledger.wait({"settled"}, taken, 600)
        settle_s = None if settled_all is None else time.monotonic() - began
        if taken - 1 > len(closed):
            raise RuntimeError("the closed loop ran out of distinct claims: raise --closed-bodies")

        since = datetime.now(UTC)
        at_rate = load(gateway, PATH, opened, headers, opts, "open", 202)
        total = sum(ledger.states().values())
        ledger.wait({"settled"}, total, 120)
        times = ledger.times(since)
        states = ledger.states()
    finally:
        ledger.close()
    delivered, settled = summary(times["delivered"]), summary(times["settled"])
    print(
        f"  delivery at {opts.rate:g}/s: p50 {delivered['p50']} s  p99 {delivered['p99']} s;"
        f"  settled p50 {settled['p50']} s  p99 {settled['p99']} s",
        flush=True,
    )
    ratio = intake["rate_per_s"] / bare_max["rate_per_s"] if bare_max["rate_per_s"] else None
    result: dict[str, Any] = {
        "intake": {"max_throughput": intake, "latency_at_rate": at_rate},
        "bare": {"max_throughput": bare_max},
        "throughput_ratio_gateway_to_bare": None if ratio is None else round(ratio, 4),
        "backlog": {
            "claims": taken,
            "all_delivered_after_s": None if drain_s is None else round(drain_s, 2),
            "delivery_throughput_per_s": (None if not drain_s else round(taken / drain_s, 1)),
            "all_settled_after_s": None if settle_s is None else round(settle_s, 2),
        },
        "end_to_end_at_rate_s": {"delivered": delivered, "settled": settled},
        "final_states": states,
    }
    p99 = delivered["p99"]
    result["targets_met"] = {
        "intake": intake["rate_per_s"] >= TARGETS["intake_per_s"] and intake["errors"] == 0,
        "delivery_p99": p99 is not None
        and p99 < TARGETS["delivery_p99_s_at_rate"]
        and at_rate["errors"] == 0,
    }
    return result


def markdown(data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {g['measured_source']} on `{g['measured_commit'][:12]}` · "
        f"{m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        f"Intake: closed loop, {s['concurrency']} connections, {s['duration_s']} s after "
        f"{s['warmup_s']} s warm-up (`POST /fhir/Claim`, 202), beside the bare endpoint (201). "
        f"End to end: open loop at {s['rate_per_s']:g} claims/s for {s['duration_s']} s; per claim "
        "from its storage to the stored acknowledgement of the fund (delivered) and to the stored "
        "settlement (the fund settles 1 s after acknowledging; the gateway polls the feed every "
        "5 s). Funds healthy (no faults). Forwarder: in the API process on SQLite, one "
        "`gateway worker` process on PostgreSQL; default settings. The intake figures are for "
        "the whole system: the forwarder, the funds and the database deliver the backlog on the "
        "same 2 cores meanwhile (API CPU includes the in-process forwarder on SQLite). Other "
        "load: CPU used by neither the API nor the load generator during the closed loop (the "
        "forwarder, the funds, the database, and other people's work on this shared machine).",
        "",
        "| database | intake/s | p50 ms | p99 ms | bare/s | ratio | backlog (from the closed loop's start) | "
        f"delivered p50 / p99 s @{s['rate_per_s']:g}/s | settled p50 / p99 s | errors "
        "| API CPU ms/claim | other load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, r in data["databases"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} |||||||||")
            continue
        mx, at = r["intake"]["max_throughput"], r["intake"]["latency_at_rate"]
        d, st, b = (
            r["end_to_end_at_rate_s"]["delivered"],
            r["end_to_end_at_rate_s"]["settled"],
            r["backlog"],
        )
        lines.append(
            f"| {name} | {harness.fmt(mx['rate_per_s'], 0)} | {harness.fmt(mx['latency_ms']['p50'], 1)} "
            f"| {harness.fmt(mx['latency_ms']['p99'], 1)} | {harness.fmt(r['bare']['max_throughput']['rate_per_s'], 0)} "
            f"| {harness.fmt(r['throughput_ratio_gateway_to_bare'], 3)} "
            f"| {b['claims']}: delivered {harness.fmt(b['all_delivered_after_s'], 1)} s "
            f"({harness.fmt(b['delivery_throughput_per_s'], 0)}/s), settled "
            f"{harness.fmt(b['all_settled_after_s'], 1)} s "
            f"| {harness.fmt(d['p50'], 3)} / {harness.fmt(d['p99'], 3)} "
            f"| {harness.fmt(st['p50'], 2)} / {harness.fmt(st['p99'], 2)} "
            f"| {mx['errors']} + {at['errors']} "
            f"| {harness.fmt(mx.get('cpu', {}).get('server_cpu_ms_per_request'), 1)} "
            f"| {harness.fmt(mx.get('cpu', {}).get('other_cores_busy'), 2)} cores |"
        )
    lines += [
        "",
        f"Targets [A] (domain FIG-1: 10 eAttest claims/s at peak): intake ≥ "
        f"{TARGETS['intake_per_s']:g}/s; delivered p99 < {TARGETS['delivery_p99_s_at_rate']:g} s "
        f"at {s['rate_per_s']:g}/s. Met: "
        + "; ".join(
            f"{name} {r['targets_met']}"
            for name, r in data["databases"].items()
            if "targets_met" in r
        ),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    harness.common_options(
        parser, DATABASES, postgres_url=DEFAULT_POSTGRES_URL, rate=20.0, open_connections=32
    )
    parser.add_argument(
        "--closed-bodies", type=int, default=8000, help="distinct claims, closed loop"
    )
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    opts.patients = (
        opts.closed_bodies + 1 + int(opts.rate * (opts.duration + opts.warmup) * 1.5) + 50
    )
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = {
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "concurrency": opts.concurrency,
        "rate_per_s": opts.rate,
        "open_connections": opts.open_connections,
        "gateway_log_level": "WARNING",
        "funds": "mutualities 100 and 300, one process, no faults, settle after 1 s",
    }
    return harness.scenario_main(
        SCENARIO, opts, settings, run_database, markdown, {"targets": TARGETS}
    )


if __name__ == "__main__":
    raise SystemExit(main())
