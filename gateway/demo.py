"""``gateway demo``: the embedded defaults (SQLite, no Redis), demo data, then serve.

Everything lives under the data dir (default ``./var``): the database, the encryption key (created
once, mode 0600) and ``demo/manifest.json``, which tells clients and tests who the demo actors are.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog
import uvicorn
from pydantic import SecretStr

from fhir_profiles.dates import brussels_date
from gateway.app import create_app
from gateway.auth.identity import DEV_IDENTITY_HEADER, Principal
from gateway.cli import new_encryption_key
from gateway.db import create_engine, session_factory
from gateway.demo_data import DEMO_IDENTIFIER_SYSTEM, PATIENTS, PROFESSIONALS, prescriptions
from gateway.migrate import upgrade
from gateway.prescriptions.service import PrescriptionService
from gateway.settings import Settings
from gateway.storage.crypto import Keyring
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


def demo_settings(data_dir: Path) -> Settings:
    """Embedded defaults under ``data_dir``; explicit GATEWAY_* variables still win."""
    env = os.environ
    return Settings(
        data_dir=data_dir,
        database_url=env.get("GATEWAY_DATABASE_URL", f"sqlite:///{data_dir / 'gateway.db'}"),
        encryption_key=SecretStr(env.get("GATEWAY_ENCRYPTION_KEY") or _key(data_dir)),
        # The demo is for trying the API with curl; the settings refuse this in production.
        insecure_dev_auth=True,
        log_format=env.get("GATEWAY_LOG_FORMAT", "console"),  # type: ignore[arg-type]
    )


async def seed(settings: Settings) -> int:
    """Create the demo prescriptions once (conditional create on their demo identifiers)."""
    engine = create_engine(settings.database_url)
    created = 0
    try:
        async with session_factory(engine)() as session:
            service = PrescriptionService(
                ResourceStore(session, Keyring(settings.key_bytes())), settings
            )
            now = datetime.now(UTC)
            for local_id, author, body in prescriptions(brussels_date(now), now):
                caller = Principal(
                    client_id=author.client_id, role="prescriber", nihdi=author.nihdi
                )
                result = await service.create(
                    body, caller, if_none_exist=f"identifier={DEMO_IDENTIFIER_SYSTEM}|{local_id}"
                )
                created += result.created
            await session.commit()
    finally:
        await engine.dispose()
    return created


def write_manifest(settings: Settings, base_url: str) -> Path:
    path = settings.data_dir / "demo" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "fhir_base": f"{base_url}/fhir",
        "dev_identity_header": DEV_IDENTITY_HEADER,
        "clients": [
            {
                "client_id": p.client_id,
                "role": p.role,
                "nihdi": p.nihdi,
                "name": p.name,
                "dev_identity": f"role={p.role}; nihdi={p.nihdi}; client_id={p.client_id}",
            }
            for p in PROFESSIONALS
        ],
        "patients": [{"ssin": p.ssin, "name": p.name, "fund_code": p.fund_code} for p in PATIENTS],
    }
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return path


def run_demo(*, host: str, port: int, data_dir: Path) -> None:
    settings = demo_settings(data_dir)
    upgrade(settings.database_url)
    created = asyncio.run(seed(settings))
    manifest = write_manifest(settings, f"http://{host}:{port}")
    log.info(
        "demo_ready", created=created, manifest=str(manifest), url=f"http://{host}:{port}/fhir"
    )
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning")
