"""The cost table: time per step of a create and of a fetch by RID, per gateway commit.

``python -m bench.costs [--refs 4844c03,HEAD] [--databases sqlite]`` (pyinstrument needed, see
bench/README.md). Per commit and database: the gateway's database is migrated and its clients
registered; an unprofiled gateway creates the prescriptions to fetch; then the gateway runs under
pyinstrument twice, once through a closed loop of creates and once through a closed loop of
fetches by RID, so each profile holds one kind of request. Each sample goes to a step
(``bench.profiling.STEPS``), and a step's time over the requests served gives µs per request.
The floor endpoint is profiled the same way for reference. Sampling covers the event-loop thread
(wall time): on SQLite the statements run in aiosqlite's thread and show as waiting. Figures are
inflated by the profiler alike; compare commits and read shares. Results:
``results/costs.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import harness, profiling, suite, workloads

SCENARIO = "costs"
DATABASES = ("sqlite", "postgresql")
OPERATIONS = ("create", "fetch")


def profiled_run(
    server_cm: Any, session_path: Path, work: workloads.Workload, opts: argparse.Namespace
) -> dict[str, Any]:
    """One closed loop against a profiled server; its steps per request once it has exited."""
    with server_cm as server:
        suite.probe(server, work, "closed")
        spec = harness.load_spec(
            server, work.path, work.bodies, work.headers, opts, "closed", expect_status=work.expect
        )
        result = harness.run_load(spec)
        print(f"    {harness.one_line(result)}", flush=True)
    from pyinstrument.session import Session

    session = Session.load(session_path)
    totals, sampled = profiling.steps(session)
    busy = sampled - totals.get(profiling.IDLE_STEP, 0.0)
    # Samples are wall time: on a busy machine a descheduled thread's wait lands on whatever
    # frame it was in, roughly in proportion to the work. So the steps' shares of the busy
    # samples are kept, and each share is priced at the server CPU per request of the same run.
    cpu_ms = result.get("cpu", {}).get("server_cpu_ms_per_request")
    shares = {k: v / busy for k, v in totals.items() if k != profiling.IDLE_STEP and busy}
    return {
        "rate_per_s_under_profiler": result["rate_per_s"],
        "server_cpu_ms_per_request_under_profiler": cpu_ms,
        "share_of_busy": {k: round(v, 4) for k, v in sorted(shares.items(), key=lambda i: -i[1])},
        "us_per_request": {
            k: round(v * cpu_ms * 1000, 1) for k, v in shares.items() if cpu_ms is not None
        },
        "busy_us_per_request": None if cpu_ms is None else round(cpu_ms * 1000, 1),
        "waiting_share_of_samples": round(
            totals.get(profiling.IDLE_STEP, 0.0) / sampled if sampled else 0.0, 4
        ),
        "errors": result["errors"],
    }


def run_database(
    name: str, opts: argparse.Namespace, sources: list[harness.GatewaySource]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url):
        for n, source in enumerate(sources):
            if n and name == "postgresql":
                harness.reset_postgres(url)
            gateway_url = f"sqlite:///{workdir / f'gateway-{n}.db'}" if name == "sqlite" else url
            label = suite.source_name(source)
            print(f"  gateway {label}", flush=True)
            ready = suite.provision(name, gateway_url, workdir / f"g{n}", source, claims=False)
            with suite.serving(ready, opts) as clients:
                works = {
                    op: workloads.BUILDERS[op]("gateway", clients.server.base_url, clients, opts)
                    for op in OPERATIONS
                }
            out[label] = {}
            for op in OPERATIONS:
                session_path = workdir / f"g{n}-{op}.pyisession"
                wrapper = [*profiling.PROFILER_WRAPPER, f"--outfile={session_path}"]
                print(f"   {op} (profiled)", flush=True)
                out[label][op] = profiled_run(
                    _server(suite.serving(ready, opts, wrapper=wrapper, log_name=f"g{n}-{op}")),
                    session_path,
                    works[op],
                    opts,
                )
    return out


@contextlib.contextmanager
def _server(serving: Any) -> Any:
    with serving as clients:
        yield clients.server


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · {m['cpu_model']}, {m['cores']} cores · load average at start "
        f"{m['load_average_at_start']} · `python -m bench.costs --refs {','.join(data['refs'])}`",
        "",
        "µs per request of each step: its share of the busy samples pyinstrument took in the "
        "gateway's event-loop thread (waiting left out) times the server CPU per request "
        f"measured in the same run, a {data['settings']['duration_s']} s closed loop of "
        f"{data['settings']['concurrency']} connections per operation under the profiler (which "
        "slows everything alike: compare columns, read shares). A sample belongs to the innermost "
        "frame naming a step (bench/profiling.py, STEPS). On SQLite the statements run in "
        "aiosqlite's thread, which is not sampled: their cost is in the CPU total, spread over "
        "the steps by the event loop's shares.",
        "",
    ]
    for _name, per_ref in harness.database_sections(data, lines):
        refs = list(per_ref)
        columns = [(ref, op) for op in OPERATIONS for ref in refs]
        steps = [s for s, _rules in profiling.STEPS if s != profiling.IDLE_STEP] + ["other"]
        lines.append("| step | " + " | ".join(f"{op} {ref}" for ref, op in columns) + " |")
        lines.append("|---|" + "--:|" * len(columns))
        for step in steps:
            values = [per_ref[ref][op]["us_per_request"].get(step) for ref, op in columns]
            if all(v is None for v in values):
                continue
            lines.append(f"| {step} | " + " | ".join(harness.fmt(v, 0) for v in values) + " |")
        lines.append(
            "| **server CPU per request** | "
            + " | ".join(
                f"**{harness.fmt(per_ref[ref][op]['busy_us_per_request'], 0)}**"
                for ref, op in columns
            )
            + " |"
        )
        lines.append(
            "| requests/s under the profiler | "
            + " | ".join(
                harness.fmt(per_ref[ref][op]["rate_per_s_under_profiler"], 0) for ref, op in columns
            )
            + " |"
        )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    harness.common_options(parser, DATABASES, default_databases="sqlite")
    parser.add_argument("--refs", default=f"{suite.BASELINE},HEAD", help="commits, comma-separated")
    parser.add_argument("--fetch-prescriptions", type=int, default=200)
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    opts.workers = 1
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    refs = [r.strip() for r in opts.refs.split(",") if r.strip()]
    if opts.git_ref:
        refs = [opts.git_ref]
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(harness.gateway_source(ref)) for ref in refs]
        data: dict[str, Any] = {
            "scenario": SCENARIO,
            "date": harness.now_iso(),
            "refs": [suite.source_name(s) for s in sources],
            "git": harness.git_info(sources[-1]),
            "machine": harness.machine_info(),
            "settings": {
                "duration_s": opts.duration,
                "warmup_s": opts.warmup,
                "concurrency": opts.concurrency,
            },
        }
        data["databases"] = harness.each_database(
            opts.databases, lambda name: run_database(name, opts, sources)
        )
    return harness.publish(SCENARIO, data, markdown(data), opts)


if __name__ == "__main__":
    sys.exit(main())
