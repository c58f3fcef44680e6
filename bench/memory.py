"""Benchmark: resident memory per gateway worker after N requests (issue 18: < 200 MB after
1,000,000, no growth).

``python -m bench.memory --requests N [--workers 2] [--databases postgresql]``. The gateway
(``gateway serve --workers N``, its clients registered) gets closed-loop runs of creates and of
fetches by RID in turn, ``--duration`` seconds each, until N requests are answered; after each run
the RSS of every process of the server (the supervisor and each worker, from ``/proc``) is
recorded. The figure is the RSS at the end and its growth since the first run (warm caches and
pools). N is a flag: 1,000,000 requests take about an hour at today's rates; run what time
allows and read the trend. Results: ``results/memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench import harness, suite, workloads

SCENARIO = "memory"
DATABASES = ("sqlite", "postgresql")
TARGET_MB = 200.0


def run_database(
    name: str, opts: argparse.Namespace, source: harness.GatewaySource
) -> dict[str, Any]:
    with harness.scratch_database(SCENARIO, name, opts.postgres_url) as (workdir, url):
        ready = suite.provision(name, url, workdir / "gateway", source, claims=False)
        with suite.serving(ready, opts) as clients:
            server = clients.server
            start = suite.rss_mb(server.pid)
            served, errors = 0, 0
            samples: list[dict[str, Any]] = []
            works: dict[str, workloads.Workload] = {}
            while served < opts.requests:
                for op in ("create", "fetch"):
                    # Tokens live 10 minutes: a fresh workload (and token) for each pass.
                    works[op] = workloads.BUILDERS[op]("gateway", server.base_url, clients, opts)
                    spec = harness.load_spec(
                        server,
                        works[op].path,
                        works[op].bodies,
                        works[op].headers,
                        opts,
                        "closed",
                        expect_status=works[op].expect,
                    )
                    result = harness.run_load(spec)
                    served += int(result["rate_per_s"] * (opts.warmup + opts.duration))
                    errors += result["errors"]
                    rss = suite.rss_mb(server.pid)
                    samples.append({"requests": served, "operation": op, "rss_mb": rss})
                    print(f"  {served:>9,} requests  {op:6} RSS MB {rss}", flush=True)
    workers = _workers(samples[-1]["rss_mb"], server.pid, opts.workers)
    first = _workers(samples[0]["rss_mb"], server.pid, opts.workers)
    end = max(workers.values()) if workers else None
    growth = None if not workers else max(workers[p] - first.get(p, workers[p]) for p in workers)
    return {
        "requests": served,
        "errors": errors,
        "rss_at_start_mb": start,
        "samples": samples,
        "rss_per_worker_at_end_mb": workers,
        "largest_worker_mb": end,
        "growth_since_first_run_mb": None if growth is None else round(growth, 1),
        # The figure is after 1,000,000 requests: a shorter run shows the trend only.
        "target_met": end is not None and end < TARGET_MB and served >= 1_000_000,
    }


def _workers(rss: dict[str, float], supervisor: int, workers: int) -> dict[str, float]:
    """The processes that serve requests: the workers, or the one process without workers."""
    if workers <= 1:
        return {p: v for p, v in rss.items() if int(p) == supervisor}
    return {p: v for p, v in rss.items() if int(p) != supervisor}


def markdown(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["settings"]
    lines = [
        f"# {SCENARIO}",
        "",
        f"{data['date']} · gateway: {data['git']['measured_source']} · {m['cpu_model']}, "
        f"{m['cores']} cores · `python -m bench.memory --requests {s['requests']} --workers "
        f"{s['workers']}`",
        "",
        f"Closed loops of {s['duration_s']} s ({s['concurrency']} connections), creates and "
        "fetches by RID in turn, until the requests are answered; RSS of each worker after each "
        f"run. Target: < {TARGET_MB:g} MB per worker after 1,000,000 requests, no growth. "
        "Requests are estimated from each run's rate times its length (warm-up included).",
        "",
        "| database | requests | errors | RSS per worker at end MB | growth since first run MB "
        "| target |",
        "|---|--:|--:|---|--:|---|",
    ]
    for name, r in data["databases"].items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} |||||")
            continue
        lines.append(
            f"| {name} | {r['requests']:,} | {r['errors']} | {r['rss_per_worker_at_end_mb']} "
            f"| {r['growth_since_first_run_mb']} | "
            + ("✅" if r["target_met"] else "❌" if r["requests"] >= 1_000_000 else "not reached")
            + " |"
        )
    lines.append("")
    for name, r in data["databases"].items():
        if "samples" in r:
            trend = ", ".join(
                f"{x['requests']:,}: {'/'.join(f'{v:g}' for v in x['rss_mb'].values())}"
                for x in r["samples"]
            )
            lines += [f"{name}, RSS MB (supervisor/workers) by requests: {trend}", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{SCENARIO}", description=__doc__)
    harness.common_options(parser, DATABASES, default_databases="postgresql")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fetch-prescriptions", type=int, default=200)
    opts = parser.parse_args(argv)
    harness.settle_options(parser, opts, DATABASES)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    settings = {
        "requests": opts.requests,
        "workers": opts.workers,
        "duration_s": opts.duration,
        "concurrency": opts.concurrency,
    }
    return harness.scenario_main(SCENARIO, opts, settings, run_database, markdown)


if __name__ == "__main__":
    sys.exit(main())
