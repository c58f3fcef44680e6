"""Off-the-shelf FHIR clients, used unchanged, against a real gateway (issue 15, item 9).

A vendor's prescribing software does not adapt its FHIR library to this gateway: it holds a
certificate from the (development) CA, the operator registers it (``gateway clients register``),
it fetches a bearer token with ``private_key_jwt`` at ``/oauth/token`` and hands that token to
its library the way the library documents it. Here those libraries are fhirpy (aiohttp) and
fhirclient (requests), talking real HTTP to one ``gateway serve`` process per module, on its own
SQLite file or the PostgreSQL test database (``GATEWAY_TEST_DATABASE_URL``). The prescriptions
follow the Belgian guide's shape (``tests/fhir_profiles/guide_examples.py``); each test has its own
patient and its own identifiers, so the tests share the server without seeing each other's data.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient import client as fhirclient
from fhirclient.models.medicationrequest import MedicationRequest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from fhir_profiles import systems
from gateway.auth import devpki
from gateway.cli import new_encryption_key
from gateway.db import sync_url
from gateway.settings import Settings
from gateway.storage.tables import metadata
from tests.fhir_profiles.guide_examples import GP, guide_prescription, ssin
from tests.fixtures.auth import REDIS_URL, DevPki, TestClient, flush_redis, token_form
from tests.fixtures.database import PG_URL
from tests.fixtures.fhir import rid_of
from tests.fixtures.processes import ROOT, Process, free_port, gateway_env, wait_healthy

pytestmark = pytest.mark.e2e

SOFTWARE = "urn:example:vendor-his"  # the prescribing software's own identifier system
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


@dataclass(frozen=True)
class Gateway:
    base_url: str
    vendor: TestClient  # the prescribing software's registered client: certificate and key

    @property
    def fhir(self) -> str:
        return f"{self.base_url}/fhir"

    def token(self) -> str:
        """A bearer token fetched as the vendor's software does (client credentials with a
        ``private_key_jwt`` assertion, audience this server's token endpoint)."""
        token_url = f"{self.base_url}/oauth/token"
        response = httpx.post(token_url, data=token_form(self.vendor.assertion(token_url)))
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def _fresh_database(migrated: str, workdir: Path) -> str:
    """This module's database: the PostgreSQL test database emptied, or a copy of the migrated
    SQLite template (``tests/fixtures/database.py``)."""
    if PG_URL:
        engine = create_engine(sync_url(PG_URL))
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)}"))
        engine.dispose()
        return PG_URL
    copy = workdir / "gateway.db"
    shutil.copyfile(migrated, copy)
    return f"sqlite:///{copy}"


def _register_vendor(env: dict[str, str], pki: DevPki, workdir: Path) -> TestClient:
    """A certificate for the GP's software from the development CA, registered by the operator's
    command, as the vendor onboarding goes (docs/auth.md)."""
    cert, key = devpki.issue_client_certificate(pki.issuer, common_name="Vendor HIS", nihdi=GP)
    files = devpki.write_client(workdir / "vendor", cert, key, pki.issuer.cert)
    client_id = "vendor-his"
    argv = [
        sys.executable, "-m", "gateway.cli", "clients", "register", "--role", "prescriber",
        "--cert", str(files.cert_path), "--nihdi", GP, "--client-id", client_id,
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return TestClient(client_id, "prescriber", GP, cert, key, [pki.issuer.cert])


@pytest.fixture(scope="module")
def gateway(
    _migrated: str, dev_pki: DevPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One ``gateway serve`` process for the module, on a free port."""
    workdir = tmp_path_factory.mktemp("stock-clients")
    settings = Settings(
        database_url=_fresh_database(_migrated, workdir),
        data_dir=workdir,
        encryption_key=SecretStr(new_encryption_key()),
        ca_dir=dev_pki.ca_dir,
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = gateway_env(
        settings,
        {
            "GATEWAY_CA_DIR": str(dev_pki.ca_dir),
            "GATEWAY_PUBLIC_BASE_URL": base_url,
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_TOKEN_RATE_LIMIT_PER_MINUTE": "100000",
            "GATEWAY_LOG_LEVEL": "WARNING",
        },
    )
    if REDIS_URL:
        flush_redis(REDIS_URL)
        env["GATEWAY_REDIS_URL"] = REDIS_URL
    vendor = _register_vendor(env, dev_pki, workdir)
    argv = [
        sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    process = Process("gateway", argv, env, workdir / "gateway.log")
    process.start()
    try:
        wait_healthy(process, f"{base_url}/healthz")
        yield Gateway(base_url, vendor)
    finally:
        process.stop()


@pytest.fixture
def fhirpy(gateway: Gateway) -> AsyncFHIRClient:
    """fhirpy as its documentation sets it up: base URL and the Authorization header value."""
    return AsyncFHIRClient(gateway.fhir, authorization=f"Bearer {gateway.token()}")


@pytest.fixture
def smart(gateway: Gateway) -> fhirclient.FHIRClient:
    """fhirclient restored from a saved state holding an OAuth2 access token: its ``FHIRServer``
    signs every request with it (``FHIROAuth2Auth``), as after its own authorization flow."""
    state = {
        "app_id": "vendor-his",
        "server": {
            "base_uri": f"{gateway.fhir}/",
            "auth_type": "oauth2",
            "auth": {"access_token": gateway.token()},
        },
    }
    return fhirclient.FHIRClient(state=state)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def patient(serial: int) -> str:
    """A patient of this module's own (valid SSIN), one per test."""
    return ssin(date(1972, 5, 9), serial)


def number() -> str:
    """The software's own number for a new prescription."""
    return f"rx-{uuid.uuid4().hex[:12]}"


def prescription(
    patient_ssin: str, rx_number: str, authored: datetime | None = None, **overrides: Any
) -> dict[str, Any]:
    body = guide_prescription(
        authored or now(),
        patient=patient_ssin,
        identifier=[{"system": SOFTWARE, "value": rx_number}],
        **overrides,
    )
    return body


def by_patient(patient_ssin: str) -> dict[str, str]:
    return {"patient:identifier": f"{systems.SSIN}|{patient_ssin}"}


# --- fhirpy -------------------------------------------------------------------------------------


async def test_fhirpy_creates_a_prescription_and_reads_it_back(fhirpy: AsyncFHIRClient) -> None:
    body = prescription(patient(101), number())
    rx = fhirpy.resource("MedicationRequest", **body)
    await rx.save()
    assert rx.id
    assert rx["meta"]["versionId"] == "1"

    read = await fhirpy.get("MedicationRequest", rx.id)
    assert read["status"] == "active"
    assert read["subject"] == body["subject"]
    assert read["medicationCodeableConcept"] == body["medicationCodeableConcept"]
    assert read["dosageInstruction"] == body["dosageInstruction"]
    assert rid_of(read) == rid_of(rx)
    # The requester the guide names through a contained PractitionerRole resolves to the GP.
    assert read["requester"]["identifier"]["value"] == GP


async def test_fhirpy_search_sorted_subsetted_and_paged(fhirpy: AsyncFHIRClient) -> None:
    """``.sort('-authoredon').elements('status').limit(2)``, all pages through ``fetch_all()``:
    the order is the one asked for (not the creation order), every page keeps the sort and the
    subset, and the summarised resources say so (FHIR R4 search.html#sort, #elements)."""
    who = patient(102)
    start = now()
    created: dict[int, str] = {}
    for seconds_ago in (1, 3, 2):  # created in an order that is not the authoring order
        rx = fhirpy.resource(
            "MedicationRequest",
            **prescription(who, number(), start - timedelta(seconds=seconds_ago)),
        )
        await rx.save()
        created[seconds_ago] = rx.id
    search = (
        fhirpy.resources("MedicationRequest")
        .search(**by_patient(who))
        .sort("-authoredon")
        .elements("status")
        .limit(2)
    )

    first_page = await search.fetch_raw()
    assert len(first_page["entry"]) == 2
    assert first_page["total"] == 3

    found = await search.fetch_all()
    assert [r.id for r in found] == [created[1], created[2], created[3]]
    for resource in found:
        assert resource["status"] == "active"
        assert "dosageInstruction" not in resource
        assert "subject" in resource  # mandatory (1..1): kept, the subset stays valid FHIR
        assert SUBSETTED in resource["meta"]["tag"]


async def test_fhirpy_conditional_create_makes_one_prescription(fhirpy: AsyncFHIRClient) -> None:
    """fhirpy's conditional creates send the condition as the query string of the POST
    (``MedicationRequest?identifier=system|value``): the retry gets the first resource back."""
    who, rx_number = patient(103), number()
    condition = f"{SOFTWARE}|{rx_number}"
    first = fhirpy.resource("MedicationRequest", **prescription(who, rx_number))
    await first.create(identifier=condition)
    assert first.id

    retry = fhirpy.resource("MedicationRequest", **prescription(who, rx_number))
    await retry.create(identifier=condition)
    assert retry.id == first.id

    searchset = fhirpy.resources("MedicationRequest").search(identifier=condition)
    again, created = await searchset.get_or_create(
        fhirpy.resource("MedicationRequest", **prescription(who, rx_number))
    )
    assert (again.id, created) == (first.id, False)
    mine = await fhirpy.resources("MedicationRequest").search(**by_patient(who)).fetch_all()
    assert [r.id for r in mine] == [first.id]


async def test_fhirpy_is_valid_checks_without_storing(fhirpy: AsyncFHIRClient) -> None:
    """``is_valid()`` posts the resource to ``MedicationRequest/$validate``: the same profile
    rules as a create, an OperationOutcome back, nothing stored."""
    who = patient(104)
    valid = fhirpy.resource("MedicationRequest", **prescription(who, number()))
    assert await valid.is_valid() is True

    without_dosage = prescription(who, number(), dosageInstruction=None)
    invalid = fhirpy.resource("MedicationRequest", **without_dosage)
    assert await invalid.is_valid() is False
    with pytest.raises(OperationOutcome) as refused:
        await invalid.is_valid(raise_exception=True)
    errors = [i for i in refused.value.resource["issue"] if i["severity"] == "error"]
    assert [i["expression"] for i in errors] == [["MedicationRequest.dosageInstruction"]]

    assert await fhirpy.resources("MedicationRequest").search(**by_patient(who)).fetch() == []


async def test_fhirpy_history_after_a_revocation(fhirpy: AsyncFHIRClient) -> None:
    rx = fhirpy.resource("MedicationRequest", **prescription(patient(105), number()))
    await rx.save()
    reason = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "wrong dose"}],
    }
    revoked = await rx.execute("$revoke", data=reason)
    assert revoked["status"] == "cancelled"

    history = await rx.execute("_history", method="get")
    assert history["type"] == "history"
    versions = [e["resource"] for e in history["entry"]]
    assert [(v["meta"]["versionId"], v["status"]) for v in versions] == [
        ("2", "cancelled"),
        ("1", "active"),
    ]
    first = await rx.execute("_history/1", method="get")
    assert first["status"] == "active"

    # fhirpy's refresh() asks again with If-None-Match: the version it holds is stale.
    await rx.refresh()
    assert (rx["status"], rx["meta"]["versionId"]) == ("cancelled", "2")


# --- fhirclient ---------------------------------------------------------------------------------


def test_fhirclient_creates_reads_and_searches_with_its_models(
    smart: fhirclient.FHIRClient,
) -> None:
    who = patient(201)
    start = now()
    ids: list[str] = []
    for seconds_ago in (2, 1):
        body = prescription(who, number(), start - timedelta(seconds=seconds_ago))
        created = MedicationRequest(body).create(smart.server)
        assert created is not None
        ids.append(created["id"])

    read = MedicationRequest.read(ids[0], smart.server)
    assert read.status == "active"
    assert read.subject.identifier.value == who
    assert read.requester.identifier.value == GP
    assert {i.system for i in read.identifier} == {SOFTWARE, systems.RID}

    # One per page: the models follow the Bundle's next link.
    search = MedicationRequest.where(struct={**by_patient(who), "_count": "1"})
    found = list(search.perform_resources_iter(smart.server))
    assert [r.id for r in found] == ids[::-1]  # newest first
    assert all(isinstance(r, MedicationRequest) for r in found)


def test_fhirclient_authorizes_itself_from_the_capability_statement(gateway: Gateway) -> None:
    """fhirclient's own backend authorization: given the software's signed assertion
    (``jwt_token``), it reads the token endpoint from the CapabilityStatement's SMART extension
    and asks for a token with client credentials; the token then creates and reads."""
    token_url = f"{gateway.base_url}/oauth/token"
    settings = {
        "app_id": gateway.vendor.client_id,
        "api_base": f"{gateway.fhir}/",
        "jwt_token": gateway.vendor.assertion(token_url),
        "scope": "system/MedicationRequest.crus",
    }
    smart = fhirclient.FHIRClient(settings=settings)
    smart.wants_patient = False  # a backend service: no patient to launch with
    assert smart.prepare() is False  # the metadata read: OAuth 2.0, not yet authorized
    smart.authorize()
    assert smart.ready

    created = MedicationRequest(prescription(patient(202), number())).create(smart.server)
    assert created is not None
    assert MedicationRequest.read(created["id"], smart.server).status == "active"
