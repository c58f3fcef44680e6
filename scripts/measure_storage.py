"""Bytes on disk per stored unit, measured on a real database filled through the API
(docs/capacity.md): a prescription version, an audit event, an identifier token, with their
indexes and TOAST, after VACUUM ANALYZE.

    .venv/bin/python scripts/measure_storage.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/capacity --prescriptions 3000

The database's ``public`` schema is dropped and migrated again: give it a database of its own.
Each prescription goes through the life the capacity plan assumes: created by its prescriber,
fetched by RID at a pharmacy, dispensed there, read once by its patient. The gateway runs in
process (its ASGI app), with real tokens, so every request is decided and audited as in production.
Prints a Markdown table and writes ``--json`` if given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text

from fhir_profiles import systems
from gateway import demo_data
from gateway.app import create_app
from gateway.auth import devpki, scopes, tokens
from gateway.auth.assertion import sign_assertion
from gateway.auth.pki import TrustStore, pem
from gateway.db import sync_url
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.storage.crypto import new_encryption_key
from gateway.storage.tables import metadata

BASE = "http://capacity.test"
PRESCRIBER, PHARMACY = "19234011004", "06012345"
CNK = "1234567"  # one package of a product the dispense names (RX-23: one CNK)
TABLES = ("resource_versions", "resource_identifiers", "audit_events")


def ssin(n: int) -> str:
    """A valid SSIN of someone born in the 20th century (check digits: 97 - first nine mod 97)."""
    rng = random.Random(n)
    first = f"{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(1, 997):03d}"
    return f"{first}{97 - int(first) % 97:02d}"


def fresh_schema(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)


async def token_for(
    app: Any, http: httpx.AsyncClient, issuer: devpki.Issuer, role: str, nihdi: str
) -> str:
    cert, key = devpki.issue_client_certificate(issuer, common_name=f"capacity {role}", nihdi=nihdi)
    client_id = f"capacity-{role}-{secrets.token_hex(4)}"
    await app.state.auth.registry.register(
        role=role,
        cert_pem=pem(cert),
        trust=TrustStore.from_dir(issuer_dir(issuer)),
        nihdi=nihdi,
        client_id=client_id,
    )
    assertion = sign_assertion(
        key, client_id=client_id, token_url=f"{BASE}/oauth/token", certificates=[cert, issuer.cert]
    )
    answer = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


_CA_DIRS: dict[int, Path] = {}


def issuer_dir(issuer: devpki.Issuer) -> Path:
    return _CA_DIRS[id(issuer)]


async def patient_token(app: Any, patient: str) -> str:
    key = await app.state.auth.keys.signing_key()
    token, _ = tokens.issue(
        key,
        issuer=BASE,
        audience=f"{BASE}/fhir",
        client_id=tokens.PORTAL_CLIENT_ID,
        role="patient",
        nihdi=None,
        ssin=patient,
        sid=secrets.token_urlsafe(16),
        scope=scopes.to_string(scopes.patient_grant(None)),
        ttl=600,
        not_after=datetime.now(UTC) + timedelta(hours=1),
    )
    return token


async def fill(url: str, count: int, patients: int, concurrency: int, key: str) -> float:
    ca_dir = Path(tempfile.mkdtemp(prefix="capacity-pki-"))
    issuer = devpki.init_ca(ca_dir, valid_from=datetime.now(UTC) - timedelta(days=1))
    _CA_DIRS[id(issuer)] = ca_dir
    settings = Settings(
        database_url=url,
        data_dir=ca_dir,
        encryption_key=SecretStr(key),
        ca_dir=ca_dir,
        public_base_url=BASE,
        rate_limit_per_minute=0,
        token_rate_limit_per_minute=0,
        log_level="WARNING",
    )
    app = create_app(settings)
    templates = [body for _, _, body in demo_data.prescriptions(datetime.now(UTC))]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as http,
    ):
        headers = {"accept": "application/fhir+json", "content-type": "application/fhir+json"}
        prescriber = {
            **headers,
            "authorization": f"Bearer {await token_for(app, http, issuer, 'prescriber', PRESCRIBER)}",
        }
        pharmacy = {
            **headers,
            "authorization": f"Bearer {await token_for(app, http, issuer, 'pharmacist', PHARMACY)}",
        }
        people = [ssin(n) for n in range(patients)]
        patient_headers = {
            p: {**headers, "authorization": f"Bearer {await patient_token(app, p)}"} for p in people
        }
        gate = asyncio.Semaphore(concurrency)

        async def life(n: int) -> None:
            patient = people[n % len(people)]
            body = json.loads(json.dumps(templates[n % len(templates)]))
            body.pop("identifier", None)
            body["subject"]["identifier"]["value"] = patient
            body["requester"]["identifier"]["value"] = PRESCRIBER
            async with gate:
                created = await http.post("/fhir/MedicationRequest", json=body, headers=prescriber)
                assert created.status_code == 201, created.text
                rx = created.json()
                rid = next(i["value"] for i in rx["identifier"] if i["system"] == systems.RID)
                found = await http.get(
                    "/fhir/MedicationRequest", params={"identifier": rid}, headers=pharmacy
                )
                assert found.status_code == 200, found.text
                dispense = {
                    "resourceType": "MedicationDispense",
                    "status": "completed",
                    "authorizingPrescription": [
                        {"identifier": {"system": systems.RID, "value": rid}}
                    ],
                    "medicationCodeableConcept": {"coding": [{"system": systems.CNK, "code": CNK}]},
                    "quantity": {"value": 1, "unit": "package"},
                    "whenHandedOver": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                done = await http.post("/fhir/MedicationDispense", json=dispense, headers=pharmacy)
                assert done.status_code == 201, done.text
                seen = await http.get(
                    f"/fhir/MedicationRequest/{rx['id']}", headers=patient_headers[patient]
                )
                assert seen.status_code == 200, seen.text

        started = time.perf_counter()
        await asyncio.gather(*(life(n) for n in range(count)))
        elapsed = time.perf_counter() - started
    await app.state.engine.dispose()
    return elapsed


def measure(url: str) -> dict[str, dict[str, float]]:
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    sizes: dict[str, dict[str, float]] = {}
    with engine.connect() as connection:
        for table in TABLES:
            connection.execute(text(f"VACUUM ANALYZE {table}"))
        for table in TABLES:
            stored = metadata.tables[table]
            rows = int(connection.scalar(select(func.count()).select_from(stored)) or 0)
            heap, indexes, total = (
                int(
                    connection.scalar(text(f"SELECT {size}(CAST(:t AS regclass))"), {"t": table})
                    or 0
                )
                for size in ("pg_relation_size", "pg_indexes_size", "pg_total_relation_size")
            )
            sizes[table] = {
                "rows": rows,
                "heap_bytes_per_row": heap / rows if rows else 0.0,
                "index_bytes_per_row": indexes / rows if rows else 0.0,
                "toast_bytes_per_row": (total - heap - indexes) / rows if rows else 0.0,
                "total_bytes_per_row": total / rows if rows else 0.0,
                "body_bytes_avg": float(
                    connection.scalar(select(func.avg(func.octet_length(stored.c.body)))) or 0
                )
                if "body" in stored.c
                else 0.0,
            }
        sizes["database"] = {
            "bytes": float(
                connection.scalar(text("SELECT pg_database_size(current_database())")) or 0
            )
        }
    engine.dispose()
    return sizes


def markdown(sizes: dict[str, dict[str, float]], count: int, elapsed: float) -> str:
    lines = [
        f"{count} prescriptions, each created, fetched by RID, dispensed and read by its patient, in {elapsed:.0f} s",
        "",
        "| table | rows | rows per prescription | heap B/row | index B/row | TOAST B/row | total B/row | body B (avg) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for table in TABLES:
        s = sizes[table]
        lines.append(
            f"| {table} | {s['rows']:,.0f} | {s['rows'] / count:.2f} | {s['heap_bytes_per_row']:.0f} | "
            f"{s['index_bytes_per_row']:.0f} | {s['toast_bytes_per_row']:.0f} | {s['total_bytes_per_row']:.0f} | "
            f"{s['body_bytes_avg']:.0f} |"
        )
    lines.append(f"\ndatabase size: {sizes['database']['bytes'] / 1e6:.1f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database of its own")
    parser.add_argument("--prescriptions", type=int, default=3000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--key-out", help="write the encryption key here (to run gateway commands on the data)"
    )
    opts = parser.parse_args(argv)
    if not opts.database_url.startswith("postgresql"):
        print("error: sizes are measured on PostgreSQL", file=sys.stderr)
        return 2
    fresh_schema(opts.database_url)
    key = new_encryption_key()
    if opts.key_out:
        Path(opts.key_out).write_text(key + "\n")
    elapsed = asyncio.run(
        fill(opts.database_url, opts.prescriptions, opts.patients, opts.concurrency, key)
    )
    sizes = measure(opts.database_url)
    print(markdown(sizes, opts.prescriptions, elapsed))
    if opts.json:
        Path(opts.json).write_text(
            json.dumps(
                {"prescriptions": opts.prescriptions, "seconds": elapsed, "sizes": sizes}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
