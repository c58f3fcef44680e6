"""``gateway demo``: the embedded defaults (SQLite, no Redis), demo data, then serve.

Everything lives under the data dir (default ``./var``): the database, the encryption key (created
once, mode 0600), the development CA (``pki/``), a certificate and key per demo client
(``demo/clients/<client_id>/``), and ``demo/manifest.json``, which tells clients and tests who the
demo actors are and where their keys are (``gateway token --client-id ...`` reads it), and each
demo patient's portal password (set afresh on every run).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.access.guard import RequestInfo
from gateway.app import create_app
from gateway.auth import devpki, pki
from gateway.auth.accounts import PatientAccounts
from gateway.auth.identity import Principal
from gateway.auth.registry import ClientRegistry, RegistrationError
from gateway.auth.state import TOKEN_PATH
from gateway.claims.service import ClaimService, KeyReused
from gateway.consents.service import ConsentService
from gateway.db import create_engine, session_factory
from gateway.demo_data import (
    CHILD,
    DEMO_IDENTIFIER_SYSTEM,
    DEMO_MANDATE_SYSTEM,
    FAMILY,
    GMF_PRACTICES,
    HOUSEHOLD,
    MANDATES,
    PATIENTS,
    PROFESSIONALS,
    claims,
    mandate,
    prescriptions,
)
from gateway.demo_funds import DemoFunds
from gateway.demo_register import DemoRegister, issue_demo_cards
from gateway.migrate import upgrade
from gateway.prescriptions.service import PrescriptionService
from gateway.settings import Settings
from gateway.storage.crypto import Keyring, new_encryption_key
from gateway.storage.families import FamilyLinks
from gateway.storage.practices import GmfPractices
from gateway.storage.store import ResourceStore

log = structlog.get_logger("gateway.demo")


def _key(data_dir: Path) -> str:
    path = data_dir / "encryption.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_encryption_key())
    return path.read_text().strip()


def base_url(host: str, port: int) -> str:
    """Where clients reach the demo (a wildcard bind address is reached on the loopback)."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"http://{reachable}:{port}"


def demo_settings(data_dir: Path, public_base_url: str | None = None) -> Settings:
    """Embedded defaults under ``data_dir``; explicit GATEWAY_* variables still win."""
    env = os.environ
    return Settings(
        data_dir=data_dir,
        database_url=env.get("GATEWAY_DATABASE_URL", f"sqlite:///{data_dir / 'gateway.db'}"),
        encryption_key=SecretStr(env.get("GATEWAY_ENCRYPTION_KEY") or _key(data_dir)),
        # Tokens name this URL (iss, aud), whatever Host header a client sends.
        public_base_url=env.get("GATEWAY_PUBLIC_BASE_URL") or public_base_url,
        log_format=env.get("GATEWAY_LOG_FORMAT", "console"),
    )


def client_dir(settings: Settings, client_id: str) -> Path:
    return settings.data_dir / "demo" / "clients" / client_id


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on an engine of its own, disposed of on the way out (for the stores
    that open their own sessions: ``ClientRegistry``, ``PatientAccounts``)."""
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One session, committed when the block completes (rolled back if it raises); the engine is
    disposed of either way. Each seed step runs in one."""
    async with _sessions(settings) as sessions, sessions() as session:
        yield session
        await session.commit()


def _store(session: AsyncSession, settings: Settings) -> ResourceStore:
    return ResourceStore(session, Keyring(settings.key_bytes()))


async def register_clients(settings: Settings) -> int:
    """Create the development CA once, then a certificate per demo client, and register each
    client once (a client already registered keeps its certificate)."""
    issuer = devpki.init_ca(settings.trust_dir())
    trust = pki.TrustStore.from_dir(settings.trust_dir())
    registered = 0
    async with _sessions(settings) as sessions:
        registry = ClientRegistry(sessions)
        for professional in PROFESSIONALS:
            existing = await registry.get(professional.client_id)
            files = client_dir(settings, professional.client_id)
            if existing is not None:
                if not (files / "key.pem").is_file():
                    raise RegistrationError(
                        f"{professional.client_id} is registered but {files} has no key: "
                        "delete the data directory to start the demo afresh"
                    )
                continue
            cert, key = devpki.issue_client_certificate(
                issuer,
                common_name=professional.name,
                nihdi=professional.nihdi,
                organisation=professional.organisation,
            )
            devpki.write_client(files, cert, key, issuer.cert)
            await registry.register(
                role=professional.role,
                cert_pem=pki.pem(cert),
                trust=trust,
                nihdi=professional.nihdi,
                client_id=professional.client_id,
                name=professional.name,
                organisation=professional.organisation,
                check_digit=settings.nihdi_check_digit,
            )
            registered += 1
    return registered


async def seed(settings: Settings) -> int:
    """Create the demo prescriptions once (conditional create on their demo identifiers)."""
    created = 0
    async with _session(settings) as session:
        service = PrescriptionService(_store(session, settings), settings)
        now = datetime.now(UTC)
        for local_id, author, body in prescriptions(now):
            caller = Principal(client_id=author.client_id, role="prescriber", nihdi=author.nihdi)
            result = await service.create(
                body, caller, if_none_exist=f"identifier={DEMO_IDENTIFIER_SYSTEM}|{local_id}"
            )
            created += result.created
    return created


async def seed_practices(settings: Settings) -> int:
    """The demo GMF practices and their members (RX-14), once: members added afresh only when
    they are not members already."""
    added = 0
    async with _session(settings) as session:
        practices = GmfPractices(session)
        now = datetime.now(UTC)
        for practice in GMF_PRACTICES:
            await practices.add_practice(practice.practice_id, practice.name, now)
            for nihdi in practice.members:
                added += await practices.add_member(practice.practice_id, nihdi, now)
    return added


async def seed_mandates(settings: Settings) -> int:
    """The demo mandates (RX-16), once, each given by its mandator as the portal would (a
    conditional create on its demo identifier, so that one he ended stays ended)."""
    created = 0
    async with _session(settings) as session:
        now = datetime.now(UTC)
        service = ConsentService(_store(session, settings), settings, RequestInfo(now=now))
        for demo in MANDATES:
            caller = Principal(client_id="gateway-demo", role="patient", ssin=demo.mandator)
            result = await service.create(
                mandate(demo, now),
                caller,
                if_none_exist=f"identifier={DEMO_MANDATE_SYSTEM}|{demo.local_id}",
            )
            created += result.created
    return created


async def seed_family(settings: Settings) -> int:
    """The demo family (PO-3): each parent linked to his child under 12, once (what the operator
    does with ``gateway family link``; in Belgium the National Register's household data)."""
    linked = 0
    async with _session(settings) as session:
        links = FamilyLinks(session, Keyring(settings.key_bytes()))
        now = datetime.now(UTC)
        for parent, child in FAMILY:
            linked += await links.link(parent, child, now)
    return linked


async def seed_claims(settings: Settings) -> int:
    """The demo household's attestations of this year (issue 17: it crosses its maximum-billing
    ceiling), once, each under its request key; the worker then sends them to the fund, which
    settles them. A key already used (by a start earlier this year) is left as it is."""
    if HOUSEHOLD.fund_code not in settings.mutuality_urls:
        return 0
    created = 0
    author = PROFESSIONALS[0]
    caller = Principal(client_id=author.client_id, role="prescriber", nihdi=author.nihdi)
    async with _session(settings) as session:
        now = datetime.now(UTC)
        service = ClaimService(_store(session, settings), settings, RequestInfo(now=now))
        for key, body in claims(now):
            try:
                async with session.begin_nested():
                    result = await service.create(body, caller, idempotency_key=key)
            except KeyReused:
                continue  # sent on an earlier day of this year
            created += not result.replayed
    return created


async def set_patient_passwords(settings: Settings) -> dict[str, str]:
    """A fresh random password for each demo patient's portal login (docs/portal.md); the
    manifest lists them, so every run of the demo prints the current ones."""
    passwords = {patient.ssin: secrets.token_urlsafe(12) for patient in PATIENTS}
    async with _sessions(settings) as sessions:
        accounts = PatientAccounts(sessions, Keyring(settings.key_bytes()))
        for ssin, password in passwords.items():
            await accounts.set_password(ssin, password)
    return passwords


def write_manifest(
    settings: Settings, base_url: str, passwords: dict[str, str] | None = None
) -> Path:
    path = settings.data_dir / "demo" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "token_url": f"{base_url}{TOKEN_PATH}",
        "fhir_base": f"{base_url}/fhir",
        "smart_configuration": f"{base_url}/.well-known/smart-configuration",
        "clients": [
            {
                "client_id": p.client_id,
                "role": p.role,
                "nihdi": p.nihdi,
                "name": p.name,
                "key_path": str((client_dir(settings, p.client_id) / "key.pem").resolve()),
                "cert_path": str((client_dir(settings, p.client_id) / "cert.pem").resolve()),
            }
            for p in PROFESSIONALS
        ],
        "portal": f"{base_url}/portal/",
        "national_register": settings.national_register_url,
        # RX-14: who shares a GMF practice (``gateway gmf list`` shows the same)
        "gmf_practices": [
            {"practice_id": p.practice_id, "name": p.name, "members": list(p.members)}
            for p in GMF_PRACTICES
        ],
        # RX-16: who acts for whom (holder: an SSIN for a proxy, a pharmacy's organisation NIHDI)
        "mandates": [
            {
                "id": m.local_id,
                "mandator": m.mandator,
                "role": m.role,
                "holder": m.holder,
                "actions": list(m.actions),
            }
            for m in MANDATES
        ],
        # Issue 17: the sickness funds, and the household whose attestations cross its ceiling
        "mutualities": dict(settings.mutuality_urls),
        "households": [
            {
                "household": HOUSEHOLD.key,
                "fund_code": HOUSEHOLD.fund_code,
                "members": list(HOUSEHOLD.members),
                "income_bracket": HOUSEHOLD.income_bracket,
                "ceiling": HOUSEHOLD.ceiling,
                "claims": [key for key, _ in claims(datetime.now(UTC))],
            }
        ],
        # PO-3: a parent acts for his child under 12 (``gateway family show`` tells the link)
        "family": [
            {"parent": parent, "child": child, "child_name": CHILD.name, "child_born": "2020-06-15"}
            for parent, child in FAMILY
        ],
        "patients": [
            {
                "ssin": p.ssin,
                "name": p.name,
                "fund_code": p.fund_code,
                "membership_number": p.membership_number,  # the fund's number for the patient
                "card_number": p.card_number,  # their eID card, current in the national register
                "password": (passwords or {}).get(p.ssin),
            }
            for p in PATIENTS
        ],
    }
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return path


def prepare(
    *,
    host: str,
    port: int,
    data_dir: Path,
    national_register_url: str | None = None,
    mutuality_urls: dict[str, str] | None = None,
) -> Settings:
    """Everything but serving: migrate, CA and clients, prescriptions, GMF practices, mandates,
    family, the household's claims, manifest."""
    settings = demo_settings(data_dir, base_url(host, port))
    if national_register_url:
        settings = settings.model_copy(update={"national_register_url": national_register_url})
    if mutuality_urls:
        settings = settings.model_copy(update={"mutuality_urls": mutuality_urls})
    upgrade(settings.database_url, keyring=Keyring(settings.key_bytes()))
    registered = asyncio.run(register_clients(settings))
    created = asyncio.run(seed(settings))
    members = asyncio.run(seed_practices(settings))
    mandates = asyncio.run(seed_mandates(settings))
    linked = asyncio.run(seed_family(settings))
    claims_sent = asyncio.run(seed_claims(settings))
    passwords = asyncio.run(set_patient_passwords(settings))
    public = (settings.public_base_url or base_url(host, port)).rstrip("/")
    manifest = write_manifest(settings, public, passwords)
    log.info(
        "demo_ready",
        clients_registered=registered,
        prescriptions_created=created,
        gmf_members_added=members,
        mandates_created=mandates,
        family_links_added=linked,
        claims_created=claims_sent,
        manifest=str(manifest),
        url=f"{public}/fhir",
        national_register=settings.national_register_url,
    )
    return settings


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run_demo(*, host: str, port: int, data_dir: Path) -> None:
    # Proofs of presence are checked with a national register: ours, unless one is configured.
    register = None if os.environ.get("GATEWAY_NATIONAL_REGISTER_URL") else DemoRegister(data_dir)
    funds: DemoFunds | None = None
    # uvicorn re-raises the SIGTERM it caught once it has shut down: as SystemExit, so that the
    # finally below still stops the register (the default action would kill us before it).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        # The sickness funds too (issue 17: the demo's attestations settle), unless configured.
        if not os.environ.get("GATEWAY_MUTUALITY_URLS"):
            funds = DemoFunds(data_dir)
        url = register.url if register else os.environ["GATEWAY_NATIONAL_REGISTER_URL"]
        issue_demo_cards(url)
        settings = prepare(
            host=host,
            port=port,
            data_dir=data_dir,
            national_register_url=url,
            mutuality_urls=funds.urls if funds else None,
        )
        app = create_app(settings)
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        if funds is not None:
            funds.stop()
        if register is not None:
            register.stop()
