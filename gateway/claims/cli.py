"""``gateway worker`` and ``gateway claims list|retry``: the claim queue for operators.

Registered on the main parser by ``gateway.cli.build_parser``. Configuration comes from the
``GATEWAY_*`` variables, as for ``gateway serve``; ``--data-dir`` as for ``gateway clients``.
Output names claims by id, fund, state and reason code: never a patient.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.auth.cli import data_dir_option, fail, print_rows, run_database, settings_for

T = TypeVar("T")


def _with_database(settings: Any, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run ``work(sessions, keyring)`` against the configured database."""
    from gateway.storage.keys import keyring_from

    keyring = keyring_from(settings)
    return run_database(lambda sessions: work(sessions, keyring), settings, pool_size=2)


def _worker(args: argparse.Namespace) -> int:
    from gateway.access.guard import system_clock
    from gateway.claims.worker import ClaimWorker, run_until_signalled
    from gateway.logging import configure_logging

    settings = settings_for(args.data_dir)
    if args.concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": args.concurrency})
    configure_logging(settings.log_format, settings.log_level)
    if not settings.mutuality_urls:
        return fail("GATEWAY_MUTUALITY_URLS names no fund: nothing to deliver to")

    async def work(sessions: Any, keyring: Any) -> None:
        from gateway.claims.outbox import Outbox

        async with sessions() as session:  # fail now, not in every round, if not migrated
            await Outbox(session).jobs(limit=1)
        await run_until_signalled(ClaimWorker(settings, sessions, keyring, clock=system_clock))

    _with_database(settings, work)
    return 0


def _job_row(job: Any) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "claim_id": job.claim_id,
        "kind": job.kind.value,
        "fund": job.fund_code,
        "state": job.state.value,
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at.isoformat(),
        "outcome": job.outcome,
        "last_error": job.last_error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def _list(args: argparse.Namespace) -> int:
    from gateway.claims.model import JobState
    from gateway.claims.outbox import Outbox

    settings = settings_for(args.data_dir)
    state = JobState.FAILED if args.failed else (JobState(args.state) if args.state else None)

    async def work(sessions: Any, _keyring: Any) -> list[dict[str, Any]]:
        async with sessions() as session:
            jobs = await Outbox(session).jobs(state=state, limit=args.limit)
        return [_job_row(job) for job in jobs]

    rows = _with_database(settings, work)
    return print_rows(
        rows,
        as_json=args.json,
        header=f"{'job':<32} {'claim':<32} {'kind':<6} {'fund':<4} {'state':<7} {'try':>3} last error",
        line=lambda row: (
            f"{row['job_id']:<32} {row['claim_id']:<32} {row['kind']:<6} {row['fund']:<4} "
            f"{row['state']:<7} {row['attempts']:>3} {row['last_error'] or '-'}"
        ),
    )


def _retry(args: argparse.Namespace) -> int:
    """Requeue failed jobs by job id or claim id; a failed claim shows ``queued`` again."""
    from gateway.access.guard import system_clock
    from gateway.claims.answers import Answers
    from gateway.claims.funds import route
    from gateway.claims.model import JobKind, JobState, State

    settings = settings_for(args.data_dir)

    async def work(sessions: Any, keyring: Any) -> list[str]:
        now = system_clock()
        done: list[str] = []
        async with sessions() as session, session.begin():
            answers = Answers(session, keyring)
            job = await answers.outbox.get(args.id)
            jobs = [job] if job is not None else await answers.outbox.jobs(claim_id=args.id)
            for job in jobs:
                if job.state is not JobState.FAILED:
                    continue
                row = await answers.records.get(job.claim_id, lock=True)
                # The configuration may have changed since: route again from the insurer's code.
                fund = route(settings.mutuality_urls, row.fund_code) if row else None
                if not await answers.outbox.requeue(job, now, fund_code=fund):
                    continue
                if job.kind is JobKind.SUBMIT and row is not None and row.state is State.FAILED:
                    await answers.mark(job.claim_id, State.QUEUED, now)
                done.append(job.job_id)
        return done

    done = _with_database(settings, work)
    if not done:
        return fail(f"no failed job with job or claim id {args.id}")
    for job_id in done:
        print(f"requeued {job_id}")
    return 0


def register(commands: Any) -> None:
    """Add ``worker`` and ``claims`` to ``gateway``'s parser."""
    worker = commands.add_parser(
        "worker", help="deliver queued eAttest claims to the funds and collect settlements"
    )
    data_dir_option(worker)
    worker.add_argument(
        "--concurrency", type=int, default=None, help="sends in flight per fund (default: setting)"
    )
    worker.set_defaults(func=_worker)

    claims = commands.add_parser("claims", help="the eAttest claim queue")
    sub = claims.add_subparsers(dest="claims", required=True)
    listing = sub.add_parser("list", help="deliveries to the funds, oldest first")
    data_dir_option(listing)
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only deliveries parked as failed")
    which.add_argument("--state", choices=("pending", "done", "failed"))
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)
    retry = sub.add_parser("retry", help="send a failed delivery again (job id or claim id)")
    data_dir_option(retry)
    retry.add_argument("id")
    retry.set_defaults(func=_retry)
