"""``gateway family link|unlink|show``: who is a parent of whom (domain PO-3).

A parent acts for his child under 12 in the portal and over the API (``permit-parent``). In Belgium
the link comes from the National Register's household composition; here the operator keeps it. A
change counts from the next request on, on every instance (the facts are read per request,
``gateway/access/facts.py``). The links are stored as keyed hashes of both SSINs, so the operator
asks about two people and nothing lists whose children are whose. Output names no one.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from gateway.access.gmf_cli import moment
from gateway.auth.cli import data_dir_option, fail, in_transaction, print_rows, settings_for

T = TypeVar("T")


def _in_session(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(links)`` in one committed transaction."""
    from gateway.storage.families import FamilyLinks
    from gateway.storage.keys import keyring_from

    keyring = keyring_from(settings)
    return in_transaction(settings, lambda session: work(FamilyLinks(session, keyring)))


def _link(args: argparse.Namespace) -> int:
    from gateway.storage.families import FamilyError

    settings = settings_for(args.data_dir)
    try:
        since = moment(args.since)
        added = _in_session(settings, lambda f: f.link(args.parent, args.child, since))
    except (FamilyError, ValueError) as exc:
        return fail(str(exc))
    if not added:
        return fail("these two are linked already")
    print(f"linked: the parent acts for the child under 12, from {since.isoformat()}")
    return 0


def _unlink(args: argparse.Namespace) -> int:
    from gateway.storage.families import FamilyError

    settings = settings_for(args.data_dir)
    now = datetime.now(UTC)
    try:
        ended = _in_session(settings, lambda f: f.unlink(args.parent, args.child, now))
    except FamilyError as exc:
        return fail(str(exc))
    if not ended:
        return fail("these two are not linked")
    print(f"unlinked from {now.isoformat()}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from gateway.storage.families import FamilyError

    settings = settings_for(args.data_dir)
    try:
        links = _in_session(settings, lambda f: f.links(args.parent, args.child))
    except FamilyError as exc:
        return fail(str(exc))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "since": link.since.isoformat(),
            "until": link.until.isoformat() if link.until else None,
            "current": link.active_at(now),
        }
        for link in links
    ]
    return print_rows(
        rows,
        as_json=args.json,
        header=f"{'since':<26} {'until':<26} current",
        line=lambda row: f"{row['since']:<26} {row['until'] or '-':<26} {row['current']}",
    )


def _people(parser: argparse.ArgumentParser) -> None:
    data_dir_option(parser)
    parser.add_argument("parent", help="the parent's national register (or BIS) number")
    parser.add_argument("child", help="the child's national register (or BIS) number")


def register(commands: Any) -> None:
    family = commands.add_parser("family", help="family links: a parent acts for a child (PO-3)")
    sub = family.add_subparsers(dest="family", required=True)
    link = sub.add_parser("link", help="the parent acts for the child while under 12")
    _people(link)
    link.add_argument(
        "--since", help="from when: YYYY-MM-DD (Brussels) or an ISO 8601 instant (default: now)"
    )
    link.set_defaults(func=_link)
    unlink = sub.add_parser("unlink", help="end the link, from now on")
    _people(unlink)
    unlink.set_defaults(func=_unlink)
    show = sub.add_parser("show", help="the links between a parent and a child, past and present")
    _people(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
