"""``gateway certs``, ``gateway clients``, ``gateway keys rotate|list`` and ``gateway token``.

Registered on the main parser by ``gateway.cli.build_parser``. Configuration comes from the
``GATEWAY_*`` variables, as for ``gateway serve``; ``--data-dir`` points at another data directory
(then its ``gateway.db`` and ``encryption.key`` are used unless the variables name others, as
``gateway demo`` does). Nothing here prints a private key, a token other than the one asked for,
or an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr

T = TypeVar("T")
MANIFEST = Path("demo") / "manifest.json"


def settings_for(data_dir: str | None) -> Any:
    """Settings from the environment, with ``--data-dir`` defaults (module docstring)."""
    from gateway.settings import Settings

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
        if not os.environ.get("GATEWAY_DATABASE_URL"):
            overrides["database_url"] = f"sqlite:///{Path(data_dir) / 'gateway.db'}"
    root = Path(data_dir) if data_dir is not None else Settings().data_dir
    key_file = root / "encryption.key"
    configured = os.environ.get("GATEWAY_ENCRYPTION_KEY") or os.environ.get(
        "GATEWAY_ENCRYPTION_KEYS"
    )
    if not configured and key_file.is_file():
        overrides["encryption_key"] = SecretStr(key_file.read_text().strip())
    return Settings(**overrides)


def run_database(factory: Callable[[Any], Awaitable[T]], settings: Any, *, pool_size: int = 1) -> T:
    """Run ``factory(sessions)`` against the configured database, then dispose of the engine."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from gateway.db import create_engine, session_factory

    async def main() -> T:
        engine = create_engine(settings.database_url, pool_size=pool_size)
        try:
            return await factory(session_factory(engine))
        except (OperationalError, ProgrammingError) as exc:
            raise SystemExit(
                f"error: database not ready ({type(exc).__name__}); run `gateway db upgrade`"
            ) from exc
        finally:
            await engine.dispose()

    coroutine: Coroutine[Any, Any, T] = main()
    return asyncio.run(coroutine)


def in_transaction(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(session)`` in one transaction against the configured database, committed when
    it returns (the operator's reference-data commands: ``gateway gmf``, ``gateway family``)."""

    async def run(sessions: Any) -> T:
        async with sessions() as session:
            result = await work(session)
            await session.commit()
            return result

    return run_database(run, settings)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def print_rows(
    rows: list[dict[str, Any]], *, as_json: bool, header: str, line: Callable[[dict[str, Any]], str]
) -> int:
    """``--json``: the rows as a JSON list; else a table, ``header`` then ``line(row)`` per row."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(header)
    for row in rows:
        print(line(row))
    return 0


def data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data directory (default: GATEWAY_DATA_DIR, else ./var)",
    )


# -- certs ------------------------------------------------------------------------------------------


def _ca_dir(args: argparse.Namespace) -> Path:
    return Path(args.ca_dir) if args.ca_dir else settings_for(args.data_dir).trust_dir()


def _certs_init(args: argparse.Namespace) -> int:
    from gateway.auth import devpki, pki

    ca_dir = _ca_dir(args)
    existed = devpki.ca_exists(ca_dir)
    issuer = devpki.init_ca(ca_dir, force=args.force)
    state = "kept existing" if existed and not args.force else "created"
    print(f"{state} development CA in {ca_dir}")
    print(f"  root CA:    {ca_dir / pki.ROOT_CA_FILE}")
    print(f"  issuing CA: {ca_dir / pki.ISSUING_CA_FILE} ({pki.common_name(issuer.cert)})")
    return 0


def _certs_issue(args: argparse.Namespace) -> int:
    from gateway.auth import devpki, pki

    ca_dir = _ca_dir(args)
    if not devpki.ca_exists(ca_dir):
        return fail(f"no development CA in {ca_dir}: run `gateway certs init` first")
    issuer = devpki.load_issuer(ca_dir)
    cert, key = devpki.issue_client_certificate(
        issuer,
        common_name=args.cn,
        nihdi=args.nihdi,
        organisation=args.org,
        key_type=args.key_type,
        days=args.days,
    )
    files = devpki.write_client(Path(args.out), cert, key, issuer.cert)
    print(f"key:         {files.key_path} (mode 0600)")
    print(f"certificate: {files.cert_path}")
    print(f"chain:       {files.chain_path}")
    print(f"sha256:      {pki.thumbprint(cert)}")
    return 0


# -- clients ----------------------------------------------------------------------------------------


def _clients_register(args: argparse.Namespace) -> int:
    from gateway.auth.pki import CertificateRefused, TrustStore
    from gateway.auth.registry import ClientRegistry, RegistrationError

    settings = settings_for(args.data_dir)
    try:
        trust = TrustStore.from_dir(settings.trust_dir())
        cert_pem = Path(args.cert).read_text()
    except (CertificateRefused, OSError) as exc:
        return fail(str(exc))

    async def register(sessions: Any) -> Any:
        return await ClientRegistry(sessions).register(
            role=args.role,
            cert_pem=cert_pem,
            trust=trust,
            nihdi=args.nihdi,
            client_id=args.client_id,
            name=args.name,
            organisation=args.organisation,
            qualification=args.qualification,
            check_digit=settings.nihdi_check_digit,
        )

    try:
        client = run_database(register, settings)
    except RegistrationError as exc:
        return fail(str(exc))
    print(f"registered {client.client_id} ({client.role}, NIHDI {client.nihdi or '-'})")
    print(
        f"  certificate sha256 {client.cert_sha256}, valid until {client.cert_not_after:%Y-%m-%d}"
    )
    return 0


def _clients_list(args: argparse.Namespace) -> int:
    from gateway.auth.registry import ClientRegistry

    settings = settings_for(args.data_dir)
    clients = run_database(lambda sessions: ClientRegistry(sessions).list(), settings)
    rows: list[dict[str, Any]] = [
        {
            "client_id": c.client_id,
            "role": c.role,
            "nihdi": c.nihdi,
            "qualification": c.qualification,
            "name": c.name,
            "organisation": c.organisation,
            "status": c.status,
            "cert_sha256": c.cert_sha256,
            "cert_not_after": c.cert_not_after.isoformat(),
        }
        for c in clients
    ]
    return print_rows(
        rows,
        as_json=args.json,
        header=f"{'client id':<24} {'role':<11} {'NIHDI':<12} {'status':<8} {'cert until':<11} name",
        line=lambda row: (
            f"{row['client_id']:<24} {row['role']:<11} {row['nihdi'] or '-':<12} "
            f"{row['status']:<8} {row['cert_not_after'][:10]:<11} {row['name']}"
        ),
    )


def _clients_revoke(args: argparse.Namespace) -> int:
    from gateway.auth.registry import ClientRegistry

    settings = settings_for(args.data_dir)
    done = run_database(
        lambda sessions: ClientRegistry(sessions).revoke(args.client_id, args.reason), settings
    )
    if not done:
        return fail(f"no active client {args.client_id}")
    print(
        f"revoked {args.client_id}: no new tokens from now on; its access tokens are refused "
        f"within {settings.client_status_cache_seconds:g} s on every instance"
    )
    return 0


# -- keys -------------------------------------------------------------------------------------------


def _key_store(sessions: Any, settings: Any) -> Any:
    from gateway.auth.tokens import KeyStore
    from gateway.storage.keys import keyring_from

    return KeyStore(
        sessions, keyring_from(settings), cache_seconds=settings.signing_key_cache_seconds
    )


def _keys_rotate(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)

    async def rotate(sessions: Any) -> str:
        kid: str = await _key_store(sessions, settings).rotate(revoke_previous=args.revoke_previous)
        return kid

    kid = run_database(rotate, settings)
    print(f"new signing key {kid}")
    if args.revoke_previous:
        print("previous keys revoked: their tokens stop verifying within the key cache time")
    else:
        print("previous keys retired: still published until the tokens they signed have expired")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    settings = settings_for(args.data_dir)
    keys = run_database(lambda sessions: _key_store(sessions, settings).describe(), settings)
    for key in keys:
        print(f"{key['kid']}  {key['created_at']:%Y-%m-%d %H:%M}  {key['state']}")
    return 0


# -- token ------------------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    import httpx
    from cryptography import x509

    from gateway.auth.assertion import ASSERTION_TYPE, sign_assertion
    from gateway.auth.devpki import load_private_key

    key_path, cert_path, token_url = args.key, args.cert, args.token_url
    if key_path is None or cert_path is None or token_url is None:
        settings = settings_for(args.data_dir)
        manifest_path = settings.data_dir / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            return fail(
                f"no demo manifest at {manifest_path}: run `gateway demo`, or pass --key, --cert and --token-url"
            )
        entry = next((c for c in manifest["clients"] if c["client_id"] == args.client_id), None)
        if entry is None:
            return fail(f"{args.client_id} is not a demo client (see {manifest_path})")
        key_path = key_path or entry["key_path"]
        cert_path = cert_path or entry["cert_path"]
        token_url = token_url or manifest["token_url"]
    key = load_private_key(Path(key_path))
    chain = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    assertion = sign_assertion(
        key, client_id=args.client_id, token_url=token_url, certificates=chain
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if args.scope:
        form["scope"] = args.scope
    try:
        response = httpx.post(token_url, data=form, timeout=10)
    except httpx.HTTPError as exc:
        return fail(f"token endpoint not reachable at {token_url}: {exc}")
    if response.status_code != 200:
        return fail(f"token endpoint answered {response.status_code}: {response.text}")
    body = response.json()
    print(json.dumps(body, indent=2) if args.json else body["access_token"])
    return 0


# -- parser -----------------------------------------------------------------------------------------


def register(commands: Any, keys: Any) -> None:
    """Add the subcommands to ``gateway``'s parser (``keys`` is the existing ``keys`` group)."""
    certs = commands.add_parser("certs", help="development PKI (certs_dev/README.md)")
    certs_sub = certs.add_subparsers(dest="certs", required=True)
    init = certs_sub.add_parser("init", help="create the development root and issuing CAs")
    data_dir_option(init)
    init.add_argument("--ca-dir", help="where to write the CA (default: <data-dir>/pki)")
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(func=_certs_init)
    issue = certs_sub.add_parser("issue", help="issue a client certificate and its key")
    data_dir_option(issue)
    issue.add_argument("--ca-dir", help="the development CA (default: <data-dir>/pki)")
    issue.add_argument("--cn", required=True, help="common name: the professional or pharmacy")
    issue.add_argument("--nihdi", help="NIHDI number, written as OU=NIHDI=<number>")
    issue.add_argument("--org", help="organisation (O=)")
    issue.add_argument(
        "--key-type", choices=("ec", "rsa"), default="ec", help="EC P-256 or RSA 3072"
    )
    issue.add_argument("--days", type=int, default=1186, help="validity (default: 39 months)")
    issue.add_argument("--out", required=True, help="directory for key.pem, cert.pem, chain.pem")
    issue.set_defaults(func=_certs_issue)

    clients = commands.add_parser("clients", help="the OAuth client registry")
    clients_sub = clients.add_subparsers(dest="clients", required=True)
    reg = clients_sub.add_parser("register", help="register a client with its certificate")
    data_dir_option(reg)
    reg.add_argument("--role", required=True, choices=("prescriber", "pharmacist", "fund", "admin"))
    reg.add_argument("--cert", required=True, help="the client's certificate (PEM)")
    reg.add_argument("--client-id", help="default: <role>-<random>")
    reg.add_argument("--nihdi", help="professional (prescriber) or organisation (pharmacy) NIHDI")
    reg.add_argument("--name", help="display name (default: the certificate's CN)")
    reg.add_argument("--organisation")
    reg.add_argument(
        "--qualification", help="default: profession and competence code from the NIHDI number"
    )
    reg.set_defaults(func=_clients_register)
    ls = clients_sub.add_parser("list", help="list registered clients")
    data_dir_option(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_clients_list)
    revoke = clients_sub.add_parser("revoke", help="revoke a client (final)")
    data_dir_option(revoke)
    revoke.add_argument("client_id")
    revoke.add_argument("--reason")
    revoke.set_defaults(func=_clients_revoke)

    rotate = keys.add_parser("rotate", help="add a new access-token signing key")
    data_dir_option(rotate)
    rotate.add_argument(
        "--revoke-previous",
        action="store_true",
        help="withdraw the other keys at once (compromise): their tokens stop verifying",
    )
    rotate.set_defaults(func=_keys_rotate)
    key_list = keys.add_parser("list", help="list signing keys and their state")
    data_dir_option(key_list)
    key_list.set_defaults(func=_keys_list)

    token = commands.add_parser("token", help="print an access token for a (demo) client")
    data_dir_option(token)
    token.add_argument("--client-id", required=True)
    token.add_argument("--scope", help="space-separated scopes (default: the role's ceiling)")
    token.add_argument("--key", help="private key PEM (default: from the demo manifest)")
    token.add_argument("--cert", help="certificate or chain PEM, sent as x5c")
    token.add_argument("--token-url", help="default: the demo manifest's token_url")
    token.add_argument("--json", action="store_true", help="print the whole token response")
    token.set_defaults(func=_token)
