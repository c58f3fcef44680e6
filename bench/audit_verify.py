"""Benchmark: ``gateway audit verify`` over a large audit log (issue 18: 1,000,000 events < 10 s).

``python -m bench.audit_verify [--events N] [--git-ref REF]``. Per database (SQLite in a temporary
directory, PostgreSQL in its own ``bench_audit`` database) the measured gateway's database is
migrated, filled with N chained events by ``bench/audit_fill.py`` (the gateway's own chain code,
fast direct inserts), and ``gateway audit verify --json`` is run and timed: wall time, and the CPU
of the command (and, on PostgreSQL, of the database's backends, an estimate from ``/proc``). The
verdict must be intact. Results: ``results/audit_verify.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import harness

SCENARIO = "audit_verify"
DATABASES = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_audit"
TARGET_S = 10.0  # for 1,000,000 events


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (_workdir, url):
        env = harness.gateway_settings(source, url)
        harness.migrate(source, env)
        fill_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(source.root)]))}
        print(f"  filling {opts.events:,} events", flush=True)
        filled = subprocess.run(
            [sys.executable, str(harness.REPO / "bench" / "audit_fill.py"), url, str(opts.events)],
            cwd=source.root,
            env=fill_env,
            check=True,
            capture_output=True,
            text=True,
        )
        fill = json.loads(filled.stdout.strip().splitlines()[-1])
        print(f"  filled in {fill['seconds']} s", flush=True)
        runs = []
        for _ in range(opts.repeat):
            before_cpu = _children_cpu_s()
            began = time.perf_counter()
            verdict = subprocess.run(
                source.command("audit", "verify", "--json"),
                cwd=source.root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - began
            cpu = _children_cpu_s() - before_cpu
            answer = verdict.stdout.strip().splitlines()[-1] if verdict.stdout.strip() else ""
            run = {
                "seconds": round(wall, 2),
                "command_cpu_s": round(cpu, 2),
                "exit_status": verdict.returncode,
                "verdict": json.loads(answer) if answer.startswith("{") else answer,
                "stderr_tail": verdict.stderr.strip()[-300:],
            }
            print(
                f"  verify: {run['seconds']} s (command CPU {run['command_cpu_s']} s), "
                f"exit {verdict.returncode}",
                flush=True,
            )
            runs.append(run)
    best = min(runs, key=lambda r: r["seconds"])
    per_million = best["seconds"] * 1_000_000 / opts.events
    return {
        "fill": fill,
        "runs": runs,
        "best_seconds": best["seconds"],
        "seconds_per_million_events": round(per_million, 2),
        "target_met": per_million < TARGET_S and all(r["exit_status"] == 0 for r in runs),
    }


def markdown(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["settings"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {data['git']['measured_source']} "
        f"(`{data['git']['measured_commit'][:12]}`) · {m['cpu_model']}, {m['cores']} cores · "
        f"load average at start {m['load_average_at_start']}",
        "",
        f"`python -m bench.audit_verify --events {s['events']}`: `gateway audit verify --json` "
        f"over {s['events']:,} chained events, best of {s['repeat']}. Target: 1,000,000 events in "
        f"< {TARGET_S:g} s (scaled linearly when fewer events are run). The machine is shared: "
        "the command's CPU is the steadier figure (on PostgreSQL the server's work is not in it).",
        "",
        "| database | events | fill s | verify s | command CPU s | s per 1M | intact | target |",
        "|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for name, r in data["databases"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} ||||||")
            continue
        best = min(r["runs"], key=lambda run: run["seconds"])
        verdict = best["verdict"]
        intact = verdict.get("ok") if isinstance(verdict, dict) else verdict
        lines.append(
            f"| {name} | {r['fill']['events']:,} | {r['fill']['seconds']} | {best['seconds']} "
            f"| {best['command_cpu_s']} "
            f"| {r['seconds_per_million_events']} | {intact} | {'✅' if r['target_met'] else '❌'} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    harness.common_options(parser, DATABASES, postgres_url=DEFAULT_POSTGRES_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="verify runs (the best is kept)")
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    if opts.quick:
        opts.events = min(opts.events, 20_000)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = {"events": opts.events, "repeat": opts.repeat}
    return harness.scenario_main(SCENARIO, opts, settings, run_database, markdown)


if __name__ == "__main__":
    sys.exit(main())
