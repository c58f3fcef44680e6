"""``gateway patients set-password SSIN``: set (or reset) a patient's password for the portal's
login page. The password is read from standard input when it is not a terminal
(``echo ... | gateway patients set-password ...``), else asked for twice without echo; it never
appears on the command line (shell history, process list)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from gateway.auth.cli import data_dir_option, fail, run_database, settings_for


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat the password: ") != first:
        return None
    return first


def _set_password(args: argparse.Namespace) -> int:
    from fhir_profiles import is_valid_ssin, normalise_ssin
    from gateway.auth.accounts import PasswordRejected, PatientAccounts, check_new_password
    from gateway.storage.keys import keyring_from

    ssin = normalise_ssin(args.ssin)
    if not is_valid_ssin(ssin):
        return fail("not a valid SSIN (11 digits with a valid check number)")
    password = _read_password()
    if password is None:
        return fail("the two passwords differ")
    try:
        check_new_password(password)
    except PasswordRejected as exc:
        return fail(str(exc))
    settings = settings_for(args.data_dir)

    async def set_it(sessions: Any) -> bool:
        return await PatientAccounts(sessions, keyring_from(settings)).set_password(ssin, password)

    created = run_database(set_it, settings)
    print("account created" if created else "password changed")
    return 0


def register(commands: Any) -> None:
    patients = commands.add_parser("patients", help="patients' portal accounts (docs/portal.md)")
    sub = patients.add_subparsers(dest="patients", required=True)
    set_password = sub.add_parser(
        "set-password", help="set a patient's portal password (read from stdin or a prompt)"
    )
    set_password.add_argument("ssin", help="the patient's SSIN (national register number)")
    data_dir_option(set_password)
    set_password.set_defaults(func=_set_password)
