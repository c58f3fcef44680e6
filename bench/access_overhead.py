"""Benchmark: what the access decision and the audit write cost on reads and searches.

``python -m bench.access_overhead`` (see bench/README.md). Per database (SQLite in a temporary
directory, PostgreSQL in its own ``bench_access`` database when reachable) it fills the gateway
over HTTP (patients with consent and relationships, prescriptions), then starts the gateway three
times on that database and drives each from a load-generator process, closed loop:

- ``off``: no decision and no audit (``Guard.decide`` permits without loading facts, the search
  filter lets every row through, ``Guard.audit`` writes nothing): the cost of everything else;
- ``decision``: the real decision (facts loaded, ``consent.decide``, the SQL search filter), no
  audit write;
- ``full``: what production runs: decision and hash-chained audit write in the same transaction.

The switches are monkeypatches applied by this module's ``serve`` command in the gateway's own
process; the gateway has no setting that turns access control off. Two interactions are measured:

- ``read``: another physician reads a prescription by id (RX-9: consent + relationship);
- ``search``: a pharmacy searches a patient's active prescriptions (RX-18: consent + relationship,
  visibility filter in SQL).

A bare FastAPI endpoint answering the same GETs with a fixed body is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import harness
from bench.loadgen import LoadSpec

SCENARIO = "access_overhead"
VARIANTS = ("off", "decision", "full")
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_access"
SSIN_SYSTEM = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
COLLEAGUE_NIHDI = "12345625004"
PHARMACY_NIHDI = "06012345"


# -- the gateway with access control switched (in its own process) -------------------------------


def patch(variant: str) -> None:
    """Apply ``variant`` to this process's gateway code (module docstring)."""
    from consent import Decision, PatientFacts, Reason, SearchFilter
    from gateway.access import guard
    from gateway.prescriptions import searching

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    if variant == "off":

        async def decide(self: Any, request: Any, ssin: Any, facts: Any = None) -> Decision:
            return Decision(True, Reason.PERMIT_RELATIONSHIP)

        async def facts_or_none(self: Any, ssin: str | None) -> PatientFacts:
            return PatientFacts(ssin or guard.NO_PATIENT)

        def everything(request: Any, facts: Any) -> SearchFilter:
            return SearchFilter(Decision(True, Reason.PERMIT_RELATIONSHIP), everything=True)

        guard.Guard.decide = decide  # type: ignore[method-assign]
        guard.Guard.facts_or_none = facts_or_none  # type: ignore[method-assign]
        searching.search_filter = everything  # type: ignore[attr-defined]
    if variant in ("off", "decision"):

        async def no_audit(self: Any, *args: Any) -> None:
            return None

        guard.Guard.audit = no_audit  # type: ignore[method-assign, assignment]
        guard.Guard.audit_no_match = no_audit  # type: ignore[method-assign, assignment]


def serve(variant: str, host: str, port: int) -> None:
    import uvicorn

    patch(variant)
    # The same arguments as gateway.cli._serve.
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


def bare(host: str, port: int) -> None:
    """A bare FastAPI endpoint answering the measured GETs with fixed bodies."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    one = orjson.dumps({"resourceType": "MedicationRequest", "id": "bare", "status": "active"})
    bundle = orjson.dumps({"resourceType": "Bundle", "type": "searchset", "total": 0})

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/fhir/MedicationRequest/{logical_id}")
    async def read(logical_id: str) -> Response:
        return Response(one, media_type="application/fhir+json")

    @app.get("/fhir/MedicationRequest")
    async def search() -> Response:
        return Response(bundle, media_type="application/fhir+json")

    uvicorn.run(app, host=host, port=port, workers=1, access_log=False, log_level="warning")


# -- the data: patients with consent and relationships, prescriptions ------------------------------


def ssins(count: int) -> list[str]:
    """``count`` synthetic SSINs with valid check digits (ID-2)."""
    from fhir_profiles import is_valid_ssin

    found: list[str] = []
    serial = 1
    while len(found) < count:
        base = f"800101{serial:03d}"
        found += [base + f"{c:02d}" for c in range(100) if is_valid_ssin(base + f"{c:02d}")][:1]
        serial += 2
    return found


def call(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else orjson.dumps(body)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    if data is not None:
        headers["Content-Type"] = "application/fhir+json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc


def eid() -> list[dict[str, Any]]:
    read_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    return [
        {
            "verified": True,
            "verificationDate": read_at,
            "verifiedWith": {
                "identifier": {
                    "system": "urn:ehealth-gateway:eid-card-number",
                    "value": "592000000182",
                }
            },
        }
    ]


def consent_body(kind: str, ssin: str, actor: tuple[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "category": [{"coding": [{"system": "urn:ehealth-gateway:consent-kind", "code": kind}]}],
        "patient": {"identifier": {"system": SSIN_SYSTEM, "value": ssin}},
        "verification": eid(),
    }
    if actor is not None:
        system, nihdi = actor
        body["provision"] = {
            "type": "permit",
            "actor": [{"reference": {"identifier": {"system": system, "value": nihdi}}}],
            "code": [
                {
                    "coding": [
                        {"system": "urn:ehealth-gateway:relationship-kind", "code": "eid-read"}
                    ]
                }
            ],
        }
    return body


def fill(
    base: str, tokens: dict[str, str], patients: int, per_patient: int
) -> dict[str, list[str]]:
    """Patients with consent and relationships (colleague, pharmacy), their prescriptions; the
    paths the load generator will ask for."""
    from gateway.demo_data import prescriptions

    core = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/"
    now = datetime.now(UTC)
    template = next(iter(prescriptions(now)))[2]
    template.pop("identifier", None)
    template["requester"]["identifier"]["value"] = harness.PRESCRIBER_NIHDI
    reads, searches = [], []
    for ssin in ssins(patients):
        call(
            base, tokens["author"], "POST", "/fhir/Consent", consent_body("informed-consent", ssin)
        )
        relation = consent_body(
            "therapeutic-relationship", ssin, (core + "nihdi-professional", COLLEAGUE_NIHDI)
        )
        call(base, tokens["colleague"], "POST", "/fhir/Consent", relation)
        pharmacy = consent_body(
            "therapeutic-relationship", ssin, (core + "nihdi-organization", PHARMACY_NIHDI)
        )
        call(base, tokens["pharmacy"], "POST", "/fhir/Consent", pharmacy)
        for _ in range(per_patient):
            body = json.loads(json.dumps(template))
            body["subject"]["identifier"]["value"] = ssin
            made = call(base, tokens["author"], "POST", "/fhir/MedicationRequest", body)
            reads.append(f"/fhir/MedicationRequest/{made['id']}")
        query = urllib.parse.urlencode(
            {"patient:identifier": f"{SSIN_SYSTEM}|{ssin}", "status": "active"}
        )
        searches.append(f"/fhir/MedicationRequest?{query}")
    return {"read": reads, "search": searches}


# -- measuring -----------------------------------------------------------------------------------------


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """A GET load (``spec.path`` empty: each "body" is a path with its query)."""
    return harness.run_load(spec)


def measure(
    server: harness.Server, paths: list[str], token: str | None, opts: argparse.Namespace
) -> dict[str, Any]:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    spec = LoadSpec(
        host=harness.HOST,
        port=server.port,
        path="",
        bodies=paths,
        headers=headers,
        mode="closed",
        connections=opts.concurrency,
        duration=opts.duration,
        warmup=opts.warmup,
        expect_status=200,
        server_pid=server.pid,
    )
    result = run_load(spec)
    lat, cpu = result["latency_ms"], result.get("cpu", {})
    print(
        f"    {server.name:15} {result['rate_per_s']:8.1f}/s  p50 {harness.fmt(lat['p50'], 2)}  "
        f"p99 {harness.fmt(lat['p99'], 2)} ms  server "
        f"{harness.fmt(cpu.get('server_cpu_ms_per_request'), 3)} ms CPU/req  errors {result['errors']}",
        flush=True,
    )
    return result


@contextlib.contextmanager
def gateways(
    url: str, source: harness.GatewaySource, workdir: Path
) -> Iterator[tuple[dict[str, harness.Server], dict[str, dict[str, str]], dict[str, str]]]:
    """The three variants on one database; per variant the tokens of the three callers."""
    port = harness.free_port()
    env = harness.gateway_settings(source, url, harness.auth_settings(source, workdir, port))
    harness.migrate(source, env)
    from bench.token_endpoint import fetch_token, provision_client

    clients = {
        "author": provision_client(
            source, env, workdir, client_id="bench-author", nihdi=harness.PRESCRIBER_NIHDI
        ),
        "colleague": provision_client(
            source, env, workdir, client_id="bench-colleague", nihdi=COLLEAGUE_NIHDI
        ),
        "pharmacy": provision_client(
            source,
            env,
            workdir,
            client_id="bench-pharmacy",
            role="pharmacist",
            nihdi=PHARMACY_NIHDI,
        ),
    }
    with contextlib.ExitStack() as stack:
        servers: dict[str, harness.Server] = {}
        tokens: dict[str, dict[str, str]] = {}
        for variant in VARIANTS:
            vport = port if variant == VARIANTS[0] else harness.free_port()
            venv = {**env, "GATEWAY_PUBLIC_BASE_URL": f"http://{harness.HOST}:{vport}"}
            argv = [
                sys.executable,
                "-m",
                "bench.access_overhead",
                "serve",
                variant,
                "--port",
                str(vport),
            ]
            server = stack.enter_context(
                harness.running(
                    f"gateway-{variant}",
                    argv,
                    port=vport,
                    ready_path="/healthz",
                    log_dir=workdir,
                    env=venv,
                )
            )
            servers[variant] = server
            tokens[variant] = {name: fetch_token(server.base_url, c) for name, c in clients.items()}
        yield servers, tokens, env


# -- the parts, in this process ------------------------------------------------------------------


def components(url: str, key: str, ssin: str, rounds: int = 300) -> dict[str, float]:
    """CPU ms per operation (this process, threads included: aiosqlite's and psycopg's work), on
    the filled database: the pure decision, and transactions with nothing, with the facts query,
    with one audit append. The differences are the parts of the HTTP overhead."""
    import time

    from sqlalchemy import text

    from consent import AccessRequest, Action, Actor, ByRelationship, search_filter
    from consent import ResourceKind as Kind
    from consent import decide as pure_decide
    from gateway.access.facts import load_facts
    from gateway.audit.writer import AuditRecord, record
    from gateway.auth.identity import Principal
    from gateway.db import create_engine, session_factory
    from gateway.settings import decode_key
    from gateway.storage.crypto import Keyring
    from gateway.storage.store import ResourceStore

    keyring = Keyring(decode_key(key))
    pharmacy = Actor("pharmacist", "bench-pharmacy", PHARMACY_NIHDI)
    caller = Principal("bench-pharmacy", "pharmacist", PHARMACY_NIHDI)
    audit = AuditRecord(
        "search", "permit", "permit-relationship", "MedicationRequest", None, ssin, caller, "bench"
    )

    async def measure_all() -> dict[str, float]:
        engine = create_engine(url, pool_size=1)
        sessions = session_factory(engine)
        async with sessions() as session:
            facts = await load_facts(ResourceStore(session, keyring), ssin)
        request = AccessRequest(
            pharmacy, Action.SEARCH, Kind.PRESCRIPTION, datetime.now(UTC), ByRelationship()
        )
        assert pure_decide(request, facts).permit

        async def empty(session: Any) -> None:
            await session.execute(text("SELECT 1"))

        async def facts_query(session: Any) -> None:
            await load_facts(ResourceStore(session, keyring), ssin)

        async def append(session: Any) -> None:
            await session.execute(text("SELECT 1"))
            await record(session, keyring, audit)

        async def tx_cpu(body: Any) -> float:
            started = time.process_time()
            for _ in range(rounds):
                async with sessions() as session, session.begin():
                    await body(session)
            return (time.process_time() - started) * 1000 / rounds

        figures = {"empty_transaction": await tx_cpu(empty)}
        figures["facts_transaction"] = await tx_cpu(facts_query)
        figures["audit_transaction"] = await tx_cpu(append)
        started = time.process_time()
        for _ in range(rounds * 10):
            search_filter(request, facts)
        figures["decide_and_search_filter"] = (time.process_time() - started) * 1000 / (rounds * 10)
        await engine.dispose()
        return {k: round(v, 4) for k, v in figures.items()}

    return asyncio.run(measure_all())


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url):
        bare_port = harness.free_port()
        bare_argv = [
            sys.executable,
            "-m",
            "bench.access_overhead",
            "bare",
            "--port",
            str(bare_port),
        ]
        with (
            gateways(url, source, workdir) as (servers, tokens, env),
            harness.running(
                "bare", bare_argv, port=bare_port, ready_path="/healthz", log_dir=workdir
            ) as bare_server,
        ):
            print(
                f"  {name}: filling {opts.patients} patients x {opts.per_patient} prescriptions",
                flush=True,
            )
            paths = fill(servers["full"].base_url, tokens["full"], opts.patients, opts.per_patient)
            result: dict[str, Any] = {}
            for interaction, caller in (("read", "colleague"), ("search", "pharmacy")):
                print(f"  {name} {interaction}:", flush=True)
                figures = {"bare": measure(bare_server, paths[interaction], None, opts)}
                for variant in VARIANTS:
                    figures[variant] = measure(
                        servers[variant], paths[interaction], tokens[variant][caller], opts
                    )
                result[interaction] = {"figures": figures, "overhead": overhead(figures)}
            first = urllib.parse.parse_qs(paths["search"][0].split("?", 1)[1])[
                "patient:identifier"
            ][0]
            parts = components(url, env["GATEWAY_ENCRYPTION_KEY"], first.rsplit("|", 1)[1])
            print(f"  {name} components (CPU ms): {parts}", flush=True)
            result["components"] = parts
    return result


def overhead(figures: dict[str, Any]) -> dict[str, Any]:
    def cpu(variant: str) -> float | None:
        value = figures[variant].get("cpu", {}).get("server_cpu_ms_per_request")
        return float(value) if value is not None else None

    def rate(variant: str) -> float:
        return float(figures[variant]["rate_per_s"])

    off, decision, full = cpu("off"), cpu("decision"), cpu("full")
    return {
        "decision_cpu_ms_per_request": None
        if off is None or decision is None
        else round(decision - off, 3),
        "audit_cpu_ms_per_request": None
        if decision is None or full is None
        else round(full - decision, 3),
        "full_throughput_vs_off": round(rate("full") / rate("off"), 3) if rate("off") else None,
        "decision_throughput_vs_off": round(rate("decision") / rate("off"), 3)
        if rate("off")
        else None,
        "full_throughput_vs_bare": round(rate("full") / rate("bare"), 3) if rate("bare") else None,
    }


# -- report ----------------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {g['measured_source']} on `{g['measured_commit'][:12]}` · "
        f"{m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        f"Closed loop, {s['concurrency']} connections, {s['duration_s']} s after {s['warmup_s']} s "
        f"warm-up, per variant; {s['patients']} patients x {s['per_patient']} prescriptions, each "
        "patient with consent and relationships with the reading physician and the pharmacy. "
        "read = another physician reads a prescription by id (RX-9); search = a pharmacy searches "
        "a patient's active prescriptions (RX-18). off = no decision, no audit; decision = facts "
        "+ consent.decide (+ SQL filter), no audit; full = decision + hash-chained audit write. "
        "Server CPU ms/req is the steadiest HTTP figure on this shared 2-core machine, yet it moves "
        "with the other load (cores busy with neither server nor generator: other people's work, "
        "the database server); the in-process parts below are the steadiest figures.",
        "",
    ]
    for _name, result in harness.database_sections(data, lines):
        for interaction, block in result.items():
            if interaction == "components":
                continue
            lines += [
                f"### {interaction}",
                "",
                "| variant | req/s | p50 ms | p99 ms | server CPU ms/req | errors | other load |",
                "|---|--:|--:|--:|--:|--:|--:|",
            ]
            for variant in ("bare", *VARIANTS):
                f = block["figures"][variant]
                lines.append(
                    f"| {variant} | {harness.fmt(f['rate_per_s'], 0)} | {harness.fmt(f['latency_ms']['p50'], 2)} "
                    f"| {harness.fmt(f['latency_ms']['p99'], 2)} "
                    f"| {harness.fmt(f.get('cpu', {}).get('server_cpu_ms_per_request'), 3)} | {f['errors']} "
                    f"| {harness.fmt(f.get('cpu', {}).get('other_cores_busy'), 2)} |"
                )
            o = block["overhead"]
            lines += [
                "",
                f"Decision: +{harness.fmt(o['decision_cpu_ms_per_request'], 3)} ms CPU/req; "
                f"audit write: +{harness.fmt(o['audit_cpu_ms_per_request'], 3)} ms CPU/req; "
                f"throughput with both = {harness.fmt((o['full_throughput_vs_off'] or 0) * 100, 0)} % of off "
                f"(decision only: {harness.fmt((o['decision_throughput_vs_off'] or 0) * 100, 0)} %), "
                f"{harness.fmt((o['full_throughput_vs_bare'] or 0) * 100, 1)} % of bare.",
                "",
            ]
        parts = result.get("components")
        if parts:
            lines += [
                "### parts, in process",
                "",
                "CPU ms per operation in the benchmark's own process (driver threads included), "
                f"{'on the filled database'}: a transaction with nothing in it "
                f"{harness.fmt(parts['empty_transaction'], 3)}; with the facts query "
                f"{harness.fmt(parts['facts_transaction'], 3)} (+"
                f"{harness.fmt(parts['facts_transaction'] - parts['empty_transaction'], 3)}); "
                f"with one audit append {harness.fmt(parts['audit_transaction'], 3)} (+"
                f"{harness.fmt(parts['audit_transaction'] - parts['empty_transaction'], 3)}); "
                f"consent.decide + search_filter alone {harness.fmt(parts['decide_and_search_filter'], 4)}.",
                "",
            ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", nargs="+", choices=DATABASES, default=list(DATABASES))
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--per-patient", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="2 s windows; nothing saved unless --results-dir"
    )
    parser.add_argument("--results-dir", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        sub = argparse.ArgumentParser()
        sub.add_argument("variant", choices=VARIANTS)
        sub.add_argument("--host", default=harness.HOST)
        sub.add_argument("--port", type=int, required=True)
        parsed = sub.parse_args(args[1:])
        serve(parsed.variant, parsed.host, parsed.port)
        return 0
    if args and args[0] == "bare":
        bare(harness.HOST, int(args[args.index("--port") + 1]))
        return 0
    opts = parse_args(args)
    if opts.quick:
        opts.duration, opts.warmup, opts.patients = 2.0, 0.5, 10
    save_to = opts.results_dir or (None if opts.quick else harness.RESULTS_DIR)
    with harness.gateway_source(None) as source:
        data: dict[str, Any] = {
            "scenario": SCENARIO,
            "date": harness.now_iso(),
            "machine": harness.machine_info(),
            "git": harness.git_info(source),
            "settings": {
                "concurrency": opts.concurrency,
                "duration_s": opts.duration,
                "warmup_s": opts.warmup,
                "patients": opts.patients,
                "per_patient": opts.per_patient,
                "gateway_log_level": "WARNING",
            },
            "databases": {},
        }
        for name in opts.databases:
            try:
                data["databases"][name] = run_database(name, opts, source)
            except harness.DatabaseUnavailable as exc:  # note it, carry on
                data["databases"][name] = {"skipped": str(exc)}
    if save_to is not None:
        for path in harness.write_results(SCENARIO, data, markdown(data), save_to):
            print(f"wrote {path}")
    else:
        print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
