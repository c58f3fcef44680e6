"""Every error answer is built one way (``gateway.fhir.outcomes``): a rule broken is coded in the
rule system, an access refusal in the access-reason system, so a client can tell a bad request
from a refusal by the coding alone (docs/architecture.md 5)."""

from __future__ import annotations

import httpx

from tests.consents.factories import RX_URL, informed_consent, post, prescription, reason_of

RULE_SYSTEM = "urn:ehealth-gateway:rule"
ACCESS_REASON_SYSTEM = "urn:ehealth-gateway:access-reason"


def codings(response: httpx.Response) -> list[tuple[str, str]]:
    return [
        (coding["system"], coding["code"])
        for issue in response.json()["issue"]
        for coding in issue.get("details", {}).get("coding", [])
    ]


async def test_architecture_5_a_refusal_names_its_reason_in_the_access_reason_system(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    refused = await colleague.get(f"{RX_URL}/{written['id']}")  # no consent, no relationship
    reason = reason_of(refused)
    assert refused.headers["content-type"].startswith("application/fhir+json")
    assert codings(refused) == [(ACCESS_REASON_SYSTEM, reason)]


async def test_ID_2_a_broken_rule_is_named_in_the_rule_system(patient: httpx.AsyncClient) -> None:
    response = await post(patient, informed_consent(ssin="85073003329"))  # wrong check digits
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert (RULE_SYSTEM, "ID-2") in codings(response)
    assert "85073003329" not in response.text  # the refused value is never echoed
    assert [i["expression"] for i in response.json()["issue"]] == [["Consent.patient.identifier"]]
