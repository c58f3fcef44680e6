"""``gateway gmf add-practice|add-member|remove-member|list``: the GMF practices (domain RX-14).

Which general practitioners share a GMF practice is reference data the operator keeps: a
prescription the patient shows to "the GMF" (``$set-visibility`` with ``prescribers = gmf``) is
read by the GPs of the author's practice and of the patient's GMF holder's practice
(``consent._predicates.visible_to_prescribers``). A change counts from the next request on, on
every instance: the facts are read per request (``gateway/access/facts.py``). Configuration and
``--data-dir`` as for ``gateway clients`` (``gateway/auth/cli.py``). Output names practices and
NIHDI numbers of physicians, never a patient.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from fhir_profiles import is_valid_nihdi_professional
from fhir_profiles.dates import BRUSSELS
from gateway.auth.cli import data_dir_option, fail, in_transaction, print_rows, settings_for

T = TypeVar("T")


def _in_session(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(practices)`` in one committed transaction."""
    from gateway.storage.practices import GmfPractices

    return in_transaction(settings, lambda session: work(GmfPractices(session)))


def moment(text: str | None) -> datetime:
    """``--since``: a date (from 00:00 Brussels time that day, docs/architecture.md 10) or an
    ISO 8601 instant with its zone; none: now."""
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == len("2026-01-31"):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), BRUSSELS)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("--since: a date (YYYY-MM-DD) or an ISO 8601 instant") from exc
    if moment.tzinfo is None:
        raise ValueError("--since: an instant needs its time zone")
    return moment


def _checked(settings: Any, nihdi: str) -> str | None:
    """The error for a number that is no valid professional NIHDI number (ID-7), else None."""
    if not is_valid_nihdi_professional(nihdi, check_digit=settings.nihdi_check_digit):
        return "not a valid professional NIHDI number (8 or 11 digits, check digits)"
    return None


def _add_practice(args: argparse.Namespace) -> int:
    from gateway.storage.practices import PracticeError

    settings = settings_for(args.data_dir)
    try:
        created = _in_session(
            settings, lambda p: p.add_practice(args.practice_id, args.name, datetime.now(UTC))
        )
    except PracticeError as exc:
        return fail(str(exc))
    print(f"{'added' if created else 'already known:'} practice {args.practice_id}")
    return 0


def _add_member(args: argparse.Namespace) -> int:
    from gateway.storage.practices import PracticeError

    settings = settings_for(args.data_dir)
    error = _checked(settings, args.nihdi)
    if error:
        return fail(error)
    try:
        since = moment(args.since)
        added = _in_session(settings, lambda p: p.add_member(args.practice_id, args.nihdi, since))
    except (PracticeError, ValueError) as exc:
        return fail(str(exc))
    if not added:
        return fail(f"{args.nihdi} is a member of {args.practice_id} already")
    print(f"{args.nihdi} is a member of {args.practice_id} from {since.isoformat()}")
    return 0


def _remove_member(args: argparse.Namespace) -> int:
    from gateway.storage.practices import PracticeError

    settings = settings_for(args.data_dir)
    now = datetime.now(UTC)
    try:
        ended = _in_session(settings, lambda p: p.remove_member(args.practice_id, args.nihdi, now))
    except PracticeError as exc:
        return fail(str(exc))
    if not ended:
        return fail(f"{args.nihdi} is no member of {args.practice_id}")
    print(f"{args.nihdi} is no longer a member of {args.practice_id} (from {now.isoformat()})")
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    practices = _in_session(settings, lambda p: p.practices())
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "practice_id": practice.practice_id,
            "name": practice.name,
            "nihdi": member.nihdi,
            "since": member.since.isoformat(),
            "until": member.until.isoformat() if member.until else None,
            "current": member.active_at(now),
        }
        for practice in practices
        for member in practice.members
        if args.all or member.active_at(now) or member.since > now
    ]
    rows += [
        {
            "practice_id": p.practice_id,
            "name": p.name,
            "nihdi": None,
            "since": None,
            "until": None,
            "current": False,
        }
        for p in practices
        if not any(row["practice_id"] == p.practice_id for row in rows)
    ]
    rows.sort(key=lambda row: (row["practice_id"], row["nihdi"] or "", row["since"] or ""))
    return print_rows(
        rows,
        as_json=args.json,
        header=f"{'practice':<20} {'member NIHDI':<12} {'since':<26} {'until':<26} name",
        line=lambda row: (
            f"{row['practice_id']:<20} {row['nihdi'] or '-':<12} {row['since'] or '-':<26} "
            f"{row['until'] or '-':<26} {row['name']}"
        ),
    )


def register(commands: Any) -> None:
    gmf = commands.add_parser("gmf", help="GMF practices: which GPs share one (RX-14)")
    sub = gmf.add_subparsers(dest="gmf", required=True)
    practice = sub.add_parser("add-practice", help="register a GMF practice")
    data_dir_option(practice)
    practice.add_argument("practice_id", help="the practice's id (e.g. its NIHDI number)")
    practice.add_argument("--name", required=True, help="display name")
    practice.set_defaults(func=_add_practice)
    add = sub.add_parser("add-member", help="a GP joins a practice")
    data_dir_option(add)
    add.add_argument("practice_id")
    add.add_argument("nihdi", help="the GP's professional NIHDI number (8 or 11 digits)")
    add.add_argument(
        "--since", help="from when: YYYY-MM-DD (Brussels) or an ISO 8601 instant (default: now)"
    )
    add.set_defaults(func=_add_member)
    remove = sub.add_parser("remove-member", help="a GP leaves a practice, from now on")
    data_dir_option(remove)
    remove.add_argument("practice_id")
    remove.add_argument("nihdi")
    remove.set_defaults(func=_remove_member)
    ls = sub.add_parser("list", help="the practices and their members")
    data_dir_option(ls)
    ls.add_argument("--all", action="store_true", help="also the ended memberships")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
