"""Benchmark: a prescriber searching one patient with 10,000 prescriptions (issue 15).

``python -m bench.patient_search`` (``--quick`` for a smoke run; see bench/README.md). Per database
(SQLite in a temporary directory, PostgreSQL in its own ``bench_search`` database when reachable)
it starts the real gateway (``gateway serve``), registers a prescriber with the real commands and
has him create, over HTTP and in parallel, ``--prescriptions`` prescriptions for one patient and
``--other-prescriptions`` for other patients (so that the patient's rows must be found, not
scanned). Then, closed loop from a load-generator process, the author searches that patient,
``GET /fhir/MedicationRequest?patient:identifier=<SSIN system>|<SSIN>`` (``permit-author``: his
own prescriptions, no consent needed), in five forms (``VARIANTS``): the default page, the total
only (``_summary=count``), one element (``_elements=status``), no count query (``_total=none``)
and the newest ten (``_count=10&_sort=-authoredon``). A bare FastAPI endpoint answering the same
GETs with the gateway's default page, byte for byte, gives the ratio.

Every variant is probed once before it is measured: it must answer 200 with what FHIR R4
search.html#summary, #elements and #total say it should.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from bench import harness
from bench.access_overhead import SSIN_SYSTEM, call, ssins
from bench.create_prescriptions import prescription_bodies
from bench.loadgen import _process_cpu_s
from bench.pharmacy import measure
from gateway.fhir.subsetting import SUBSETTED

SCENARIO = "patient_search"
RX_PATH = "/fhir/MedicationRequest"
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_search"
OTHER_PATIENTS = 100  # the other prescriptions are spread over this many patients
TOKEN_BATCH = 2_000  # creates per bearer token while seeding (a token lasts 10 min)

Bundle = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    """One form of the search: its name, what it adds to the query, and what its answer must
    show (``check`` returns what is wrong, or None)."""

    name: str
    params: tuple[tuple[str, str], ...]
    check: Callable[[Bundle, int], str | None]

    @property
    def query(self) -> str:
        return urllib.parse.urlencode(self.params) or "(none)"


def _entries(bundle: Bundle) -> list[dict[str, Any]]:
    return [entry.get("resource", {}) for entry in bundle.get("entry", [])]


def _tagged(resource: dict[str, Any]) -> bool:
    return any(t.get("code") == SUBSETTED["code"] for t in resource.get("meta", {}).get("tag", []))


def _default(bundle: Bundle, total: int) -> str | None:
    found = _entries(bundle)
    if bundle.get("total") != total or not 0 < len(found) <= total:
        return f"expected total {total} and a page of entries"
    if any(_tagged(r) or "dosageInstruction" not in r for r in found):
        return "expected whole prescriptions"
    return None


def _count_only(bundle: Bundle, total: int) -> str | None:
    if bundle.get("total") != total or "entry" in bundle:
        return f"expected total {total} and no entry"
    return None


def _elements(bundle: Bundle, total: int) -> str | None:
    found = _entries(bundle)
    if not found or bundle.get("total") != total:
        return f"expected total {total} and a page of entries"
    # status asked for; dosageInstruction is neither asked for nor mandatory, so it must be gone.
    if any("status" not in r or "dosageInstruction" in r or not _tagged(r) for r in found):
        return "expected entries with status, without dosageInstruction, tagged SUBSETTED"
    return None


def _no_total(bundle: Bundle, total: int) -> str | None:
    if "total" in bundle or not _entries(bundle):
        return "expected a page of entries and no total"
    return None


def _newest_ten(bundle: Bundle, total: int) -> str | None:
    authored = [r.get("authoredOn", "") for r in _entries(bundle)]
    if len(authored) != min(10, total) or authored != sorted(authored, reverse=True):
        return f"expected {min(10, total)} entries, newest authoredOn first"
    return None


VARIANTS: Final = (
    Variant("default page", (), _default),
    Variant("_summary=count", (("_summary", "count"),), _count_only),
    Variant("_elements=status", (("_elements", "status"),), _elements),
    Variant("_total=none", (("_total", "none"),), _no_total),
    Variant("_count=10, -authoredon", (("_count", "10"), ("_sort", "-authoredon")), _newest_ten),
)


def search_path(ssin: str, variant: Variant) -> str:
    query = (("patient:identifier", f"{SSIN_SYSTEM}|{ssin}"), *variant.params)
    return f"{RX_PATH}?{urllib.parse.urlencode(query)}"


# -- the bare endpoint (in its own process) ------------------------------------------------------


def bare(host: str, port: int, body_path: Path) -> None:
    """``bench.bare_app`` answering ``GET /fhir/MedicationRequest`` with the bytes of
    ``body_path`` (the gateway's default page). Same uvicorn arguments as the gateway."""
    import uvicorn
    from fastapi.responses import Response

    from bench import bare_app

    body = body_path.read_bytes()

    async def search() -> Response:
        return Response(body, media_type="application/fhir+json")

    bare_app.app.get(RX_PATH)(search)
    uvicorn.run(
        bare_app.app, host=host, port=port, workers=1, access_log=False, log_level="warning"
    )


# -- the data ------------------------------------------------------------------------------------


def seed(base: str, client: Any, subjects: Sequence[str], workers: int) -> float:
    """One prescription per SSIN of ``subjects`` (the demo bodies in turn, requested by the
    benchmark's prescriber, for that patient), created over HTTP by ``workers`` threads; the
    seconds it took."""
    from bench.token_endpoint import fetch_token

    bodies = prescription_bodies()
    started = time.perf_counter()
    for first in range(0, len(subjects), TOKEN_BATCH):
        token = fetch_token(base, client)

        def create(n: int, token: str = token) -> None:
            body = orjson.loads(bodies[n % len(bodies)])
            body["subject"]["identifier"]["value"] = subjects[n]
            call(base, token, "POST", RX_PATH, body)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, range(first, min(first + TOKEN_BATCH, len(subjects)))))
    return time.perf_counter() - started


# -- measuring -----------------------------------------------------------------------------------


@contextlib.contextmanager
def started_gateway(
    url: str, source: harness.GatewaySource, workdir: Path
) -> Iterator[tuple[harness.Server, Any]]:
    """The gateway on the (empty) database ``url``, migrated, with the prescriber registered."""
    if not source.has_oauth:
        raise RuntimeError("this benchmark needs a gateway with OAuth")
    port = harness.free_port()
    env = harness.gateway_settings(source, url, harness.auth_settings(source, workdir, port))
    harness.migrate(source, env)
    prescriber = harness.provision_prescriber(source, env, workdir)
    with harness.running(
        "gateway",
        source.serve_command(port),
        port=port,
        ready_path="/healthz",
        log_dir=workdir,
        env=env,
        cwd=source.root,
    ) as gateway:
        yield gateway, prescriber


class DatabaseCpu:
    """CPU seconds of the PostgreSQL backends serving the gateway (its pool's connections to the
    benchmark's database, read from ``/proc``; the server runs on this machine). The load
    generator counts the gateway process only, and on PostgreSQL the count and the sort run in
    these backends. None on SQLite (its work is in the gateway's own threads) or when the
    backends cannot be read."""

    def __init__(self, postgres_url: str | None) -> None:
        self.postgres_url = postgres_url

    def snapshot(self) -> dict[int, float] | None:
        if self.postgres_url is None:
            return None
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres_url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        cpu = {pid: _process_cpu_s(pid) for (pid,) in pids}
        return {pid: s for pid, s in cpu.items() if s is not None} or None

    @staticmethod
    def per_request(
        before: dict[int, float] | None, after: dict[int, float] | None, result: dict[str, Any]
    ) -> float | None:
        """Backend CPU ms per request over warm-up and window together (the load generator's
        window edges are not visible here): requests estimated as the window's rate times both."""
        seconds = float(result["warmup_s"]) + float(result["duration_s"])
        sent = float(result["rate_per_s"]) * seconds
        if before is None or after is None or not sent:
            return None
        used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        return round(used * 1000 / sent, 3)


def probe(gateway: harness.Server, token: str, ssin: str, total: int) -> dict[str, Bundle]:
    """Each variant once, outside the measurement: 200 (``call`` raises otherwise) with the
    answer FHIR R4 search.html says it should have."""
    answers = {}
    for variant in VARIANTS:
        bundle = call(gateway.base_url, token, "GET", search_path(ssin, variant))
        wrong = variant.check(bundle, total)
        if wrong:
            raise RuntimeError(f"gateway, {variant.name}: {wrong}")
        answers[variant.name] = bundle
    return answers


def fresh_token(gateway: harness.Server, client: Any) -> tuple[str, dict[str, str]]:
    """A new token (it lasts 10 minutes) and the headers of a search with it; the bare endpoint
    gets the same headers and ignores them."""
    from bench.token_endpoint import fetch_token

    token = fetch_token(gateway.base_url, client)
    return token, {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    patient, *others = ssins(1 + OTHER_PATIENTS)
    with (
        harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url),
        started_gateway(url, source, workdir) as (gateway, prescriber),
    ):
        print(f"  seeding {opts.prescriptions} prescriptions for the patient", flush=True)
        patient_s = seed(
            gateway.base_url, prescriber, [patient] * opts.prescriptions, opts.seed_workers
        )
        print(
            f"  seeded in {patient_s:.1f} s ({opts.prescriptions / patient_s:.0f}/s); "
            f"{opts.other_prescriptions} for {len(others)} other patients",
            flush=True,
        )
        subjects = [others[n % len(others)] for n in range(opts.other_prescriptions)]
        others_s = seed(gateway.base_url, prescriber, subjects, opts.seed_workers)
        print(f"  seeded in {others_s:.1f} s", flush=True)

        token, headers = fresh_token(gateway, prescriber)
        answers = probe(gateway, token, patient, opts.prescriptions)
        default_page = orjson.dumps(answers[VARIANTS[0].name])
        body_path = workdir / "bare-bundle.json"
        body_path.write_bytes(default_page)
        bare_port = harness.free_port()
        bare_argv = [
            *(sys.executable, "-m", f"bench.{SCENARIO}", "bare"),
            *("--port", str(bare_port), "--body", str(body_path)),
        ]
        with harness.running(
            "bare", bare_argv, port=bare_port, ready_path="/healthz", log_dir=workdir
        ) as bare_server:
            plain = search_path(patient, VARIANTS[0])
            bare_result = measure(bare_server, "", [plain], headers, opts, "closed", label="bare")
            backends = DatabaseCpu(url if name == "postgresql" else None)
            figures: dict[str, dict[str, Any]] = {}
            for variant in VARIANTS:
                run_headers = fresh_token(gateway, prescriber)[1]
                before = backends.snapshot()
                figures[variant.name] = measure(
                    gateway,
                    "",
                    [search_path(patient, variant)],
                    run_headers,
                    opts,
                    "closed",
                    label=variant.name,
                )
                db_ms = backends.per_request(before, backends.snapshot(), figures[variant.name])
                figures[variant.name]["database_cpu_ms_per_request"] = db_ms
                if db_ms is not None:
                    print(f"  {'':8} {'':14} PostgreSQL backends {db_ms:.2f} ms CPU/req")
        gateway_log = gateway.log_tail(20)
    bare_rate = bare_result["rate_per_s"]
    result: dict[str, Any] = {
        "seed": {
            "patient_prescriptions": opts.prescriptions,
            "patient_seconds": round(patient_s, 1),
            "other_prescriptions": opts.other_prescriptions,
            "other_patients": len(others),
            "other_seconds": round(others_s, 1),
        },
        "answers": {
            name: {
                "total": bundle.get("total"),
                "entries": len(bundle.get("entry", [])),
                "body_bytes": len(orjson.dumps(bundle)),
            }
            for name, bundle in answers.items()
        },
        "bare": bare_result,
        "variants": figures,
        "throughput_ratio_to_bare": {
            name: round(f["rate_per_s"] / bare_rate, 4) if bare_rate else None
            for name, f in figures.items()
        },
    }
    if gateway_log.strip():
        result["gateway_log_tail"] = gateway_log
    return result


# -- report ----------------------------------------------------------------------------------------


def _row(label: str, query: str, f: dict[str, Any], ratio: str, size: str) -> str:
    lat, cpu = f["latency_ms"], f.get("cpu", {})
    return (
        f"| {label} | {query} | {harness.fmt(f['rate_per_s'], 0)} "
        f"| {harness.fmt(lat['p50'], 2)} | {harness.fmt(lat['p95'], 2)} "
        f"| {harness.fmt(lat['p99'], 2)} | {harness.fmt(cpu.get('server_cpu_ms_per_request'), 3)} "
        f"| {harness.fmt(f.get('database_cpu_ms_per_request'), 3)} "
        f"| {harness.fmt(cpu.get('other_cores_busy'), 2)} / {harness.fmt(cpu.get('steal_cores'), 2)} "
        f"| {f['errors']} | {ratio} | {size} |"
    )


def markdown(data: dict[str, Any]) -> str:
    s, m, g = data["settings"], data["machine"], data["git"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {g['measured_source']}"
        + ("" if "git archive" in g["measured_source"] else f" on `{g['measured_commit'][:12]}`")
        + f" · {m['cpu_model']}, {m['cores']} cores · Python {m['python']}",
        "",
        "The author of a patient's prescriptions searches that patient, `GET "
        "/fhir/MedicationRequest?patient:identifier=<SSIN system>|<SSIN>` plus the query shown "
        f"(permit-author: his own, no consent needed). The patient has {s['prescriptions']:,} "
        f"prescriptions; {s['other_prescriptions']:,} more belong to {OTHER_PATIENTS} other "
        "patients. All were created over HTTP beforehand. Each variant was probed first: 200, "
        "with the right total and entries. `_summary=count` gives the total and no entry. "
        "`_elements=status` gives entries tagged SUBSETTED. `_total=none` gives no total. "
        "`_count=10` gives ten entries, newest first. The bare endpoint answers every GET with "
        "the gateway's default page, byte for byte. Closed loop: "
        f"{s['concurrency']} connections, {s['duration_s']} s after {s['warmup_s']} s warm-up "
        "per run. Errors are answers other than 200, timeouts and connection failures. "
        f"Authentication: {s['auth']}; gateway log level {s['gateway_log_level']}. Server CPU "
        "ms/req counts the gateway process, SQLite included (it runs in the gateway's threads). "
        "PostgreSQL CPU ms/req is an estimate: the CPU of the gateway's PostgreSQL backends "
        "over warm-up and window, over the window's rate times both. Other load is what the "
        "rest of this shared 2-core machine used: other people's work, and PostgreSQL. Read "
        "other load and steal before comparing rates.",
        "",
    ]
    for _name, result in harness.database_sections(data, lines):
        seeded, answers = result["seed"], result["answers"]
        lines += [
            f"Seeding: {seeded['patient_prescriptions']:,} prescriptions for the patient in "
            f"{seeded['patient_seconds']:g} s "
            f"({seeded['patient_prescriptions'] / max(seeded['patient_seconds'], 0.1):,.0f}/s), "
            f"{seeded['other_prescriptions']:,} for the others in {seeded['other_seconds']:g} s.",
            "",
            "| request | query | req/s | p50 ms | p95 ms | p99 ms | server CPU ms/req "
            "| PostgreSQL CPU ms/req ≈ | other load / steal | errors | of bare | body bytes |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for variant in VARIANTS:
            answer = answers[variant.name]
            ratio = result["throughput_ratio_to_bare"][variant.name]
            lines.append(
                _row(
                    variant.name,
                    f"`{variant.query}`" if variant.params else "–",
                    result["variants"][variant.name],
                    "–" if ratio is None else f"{ratio * 100:.1f} %",
                    f"{answer['body_bytes']:,}",
                )
            )
        size = answers[VARIANTS[0].name]["body_bytes"]
        lines += [_row("bare endpoint", "–", result["bare"], "100 %", f"{size:,}"), ""]
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{SCENARIO}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Closed loop only: --rate and --open-connections are read by harness.load_spec, not used.
    harness.common_options(parser, DATABASES, postgres_url=DEFAULT_POSTGRES_URL, concurrency=4)
    parser.add_argument(
        "--prescriptions",
        type=int,
        default=None,
        help="the searched patient's prescriptions (default 10,000; 500 with --quick)",
    )
    parser.add_argument(
        "--other-prescriptions",
        type=int,
        default=None,
        help=f"prescriptions of {OTHER_PATIENTS} other patients (default 300; 50 with --quick)",
    )
    parser.add_argument("--seed-workers", type=int, default=8, help="threads creating the data")
    parser.set_defaults(client="raw")
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    if opts.prescriptions is None:
        opts.prescriptions = 500 if opts.quick else 10_000
    if opts.other_prescriptions is None:
        opts.other_prescriptions = 50 if opts.quick else 300
    if opts.prescriptions < 1 or opts.other_prescriptions < 0:
        parser.error("--prescriptions must be at least 1, --other-prescriptions at least 0")
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
            "prescriptions": opts.prescriptions,
            "other_prescriptions": opts.other_prescriptions,
            "other_patients": OTHER_PATIENTS,
            "seed_workers": opts.seed_workers,
            "variants": {v.name: v.query for v in VARIANTS},
            "client": opts.client,
            "gateway_log_level": "WARNING",
            "auth": "OAuth bearer tokens (client_credentials, private_key_jwt), rate limits off",
            "server": "uvicorn, 1 worker, loop/http auto (uvloop, httptools)",
        },
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
        sub.add_argument("--body", type=Path, required=True)
        parsed = sub.parse_args(args[1:])
        bare(parsed.host, parsed.port, parsed.body)
        return 0
    opts = parse_args(args)
    with harness.gateway_source(opts.git_ref) as source:
        print(f"gateway: {source.label}", flush=True)
        data = run(opts, source)
    return harness.publish(SCENARIO, data, markdown(data), opts)


if __name__ == "__main__":
    sys.exit(main())
