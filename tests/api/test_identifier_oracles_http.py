"""A search by business identifier is no existence oracle: "it exists but is not yours" and "it
does not exist" get the same status and the same Bundle (an empty searchset, total 0), while the
refusal is still audited for the operator. The RID path for pharmacies keeps working."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from fastapi import FastAPI

from tests.consents.factories import (
    OTHER_SSIN,
    RX_URL,
    SSIN,
    audit_rows,
    created,
    eid_headers,
    informed_consent,
    prescription,
)
from tests.dispenses.factories import MD_URL, dispense_rid
from tests.fixtures.app import ClientFactory
from tests.fixtures.fhir import rid_of

MY_HIS = "urn:example:my-his"  # the prescribing software's own identifier system


def unknown_rid() -> str:
    return "BEP" + "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(9))


def comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    """Status, media type and the Bundle without what names the query (the self link) or the
    moment (id, meta, timestamp)."""
    body = response.json()
    kept = {k: v for k, v in body.items() if k not in ("id", "meta", "timestamp", "link")}
    relations = sorted(link["relation"] for link in body.get("link", []))
    return response.status_code, response.headers["content-type"], {**kept, "link": relations}


async def assert_no_oracle(
    client: httpx.AsyncClient, url: str, existing: dict[str, str], missing: dict[str, str]
) -> None:
    hidden, absent = await client.get(url, params=existing), await client.get(url, params=missing)
    assert comparable(hidden) == comparable(absent)
    assert comparable(absent)[0] == 200
    assert absent.json()["total"] == 0
    assert not absent.json().get("entry")


async def test_sec_identifier_search_is_no_oracle_prescriptions(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    client_for: ClientFactory,
) -> None:
    rx = await prescription(author, identifier=[{"system": MY_HIS, "value": "rx-oracle-1"}])
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    for client in (colleague, stranger):  # a physician without consent; another patient
        await assert_no_oracle(
            client, RX_URL, {"identifier": rid_of(rx)}, {"identifier": unknown_rid()}
        )
        await assert_no_oracle(
            client,
            RX_URL,
            {"identifier": f"{MY_HIS}|rx-oracle-1"},
            {"identifier": f"{MY_HIS}|rx-oracle-2"},
        )
    # The ones it is for still find it; the refusals are in the log for the operator.
    assert (await author.get(RX_URL, params={"identifier": rid_of(rx)})).json()["total"] == 1
    patient = await client_for("patient", ssin=SSIN)
    assert (await patient.get(RX_URL, params={"identifier": rid_of(rx)})).json()["total"] == 1
    refused = [r for r in await audit_rows(app) if r.outcome == "deny"]
    assert [(r.resource_id, r.reason) for r in refused] == [
        (rx["id"], "no-consent"),
        (rx["id"], "no-consent"),
        (rx["id"], "not-own-data"),
        (rx["id"], "not-own-data"),
    ]


async def test_sec_identifier_search_is_no_oracle_prescriptions_rid_path_kept(
    author: httpx.AsyncClient, pharmacy: httpx.AsyncClient, other_pharmacy: httpx.AsyncClient
) -> None:
    # RX-17.1: a pharmacy holding the RID reads the prescription; once delivered, another
    # pharmacy holding the same RID still learns its state (docs/pharmacy.md), not an empty set.
    rx = await prescription(author)
    found = await pharmacy.get(RX_URL, params={"identifier": rid_of(rx)})
    assert found.json()["total"] == 1
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201
    status = await other_pharmacy.get(RX_URL, params={"identifier": rid_of(rx)})
    [entry] = status.json()["entry"]
    assert entry["resource"]["status"] == "completed"


async def test_sec_identifier_search_is_no_oracle_dispenses(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    pharmacy: httpx.AsyncClient,
    client_for: ClientFactory,
) -> None:
    rx = await prescription(author)
    assert (await dispense_rid(pharmacy, rid_of(rx))).status_code == 201
    existing = {"prescription": f"MedicationRequest/{rx['id']}"}
    missing = {"prescription": f"MedicationRequest/{secrets.token_hex(16)}"}
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    for client in (colleague, stranger):
        await assert_no_oracle(client, MD_URL, existing, missing)
    assert (await author.get(MD_URL, params=existing)).json()["total"] == 1
    refused = [r for r in await audit_rows(app) if r.outcome == "deny"]
    assert [(r.resource_type, r.reason) for r in refused] == [
        ("MedicationDispense", "no-consent"),
        ("MedicationDispense", "not-own-data"),
    ]


async def test_sec_identifier_search_is_no_oracle_consents(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    client_for: ClientFactory,
) -> None:
    given = await created(
        author, informed_consent(identifier=[{"system": MY_HIS, "value": "consent-7"}])
    )
    existing = {"identifier": f"{MY_HIS}|consent-7"}
    missing = {"identifier": f"{MY_HIS}|consent-8"}
    stranger = await client_for("patient", ssin=OTHER_SSIN)
    # A provider without the patient's presence (CO-2), another patient (PO-4).
    for client in (colleague, stranger):
        await assert_no_oracle(client, "/fhir/Consent", existing, missing)
    shown = await colleague.get("/fhir/Consent", params=existing, headers=eid_headers())
    assert [e["resource"]["id"] for e in shown.json()["entry"]] == [given["id"]]
    patient = await client_for("patient", ssin=SSIN)
    assert (await patient.get("/fhir/Consent", params=existing)).json()["total"] == 1
    refused = [r for r in await audit_rows(app) if r.outcome == "deny"]
    assert [(r.resource_id, r.reason) for r in refused] == [
        (given["id"], "no-presence"),
        (given["id"], "not-own-data"),
    ]
    # The gateway's own uniqueness tokens are not searchable identifiers.
    internal = await patient.get(
        "/fhir/Consent", params={"identifier": f"urn:ehealth-gateway:active-consent|{SSIN}"}
    )
    assert internal.status_code == 400
    assert internal.json()["issue"][0]["expression"] == ["identifier"]
