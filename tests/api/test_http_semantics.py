"""The HTTP semantics stock FHIR clients expect (issue 15): ``charset=utf-8`` on every FHIR JSON
answer, ``HEAD`` wherever ``GET`` works, conditional reads (304), the legacy media types on input,
``_pretty``, and ``Prefer: return=...`` on writes (FHIR R4 http.html#mime-type, #cread, #return,
#parameters)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.consents.factories import URL as CONSENT_URL
from tests.consents.factories import created, informed_consent, last_audit, prescription
from tests.dispenses.factories import revoke
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.clock import Clock
from tests.fixtures.fhir import FHIR_JSON

RX_URL = "/fhir/MedicationRequest"
FHIR_JSON_UTF8 = "application/fhir+json; charset=utf-8"


def _no_body(response: httpx.Response) -> None:
    assert response.content == b""


# --- charset=utf-8 on every FHIR JSON answer (http.html#mime-type) ----------------------------


async def test_resources_bundles_and_the_capability_statement_say_utf_8(
    author: httpx.AsyncClient,
) -> None:
    create = await author.post(RX_URL, json=medication_request(), headers=FHIR_JSON)
    assert create.status_code == 201, create.text
    rx = create.json()
    answers = {
        "create": create,
        "read": await author.get(f"{RX_URL}/{rx['id']}"),
        "vread": await author.get(f"{RX_URL}/{rx['id']}/_history/1"),
        "history": await author.get(f"{RX_URL}/{rx['id']}/_history"),
        "search": await author.get(RX_URL),
        "metadata": await author.get("/fhir/metadata"),
    }
    for name, answer in answers.items():
        assert answer.status_code in (200, 201), name
        assert answer.headers["content-type"] == FHIR_JSON_UTF8, name


async def test_operation_outcomes_say_utf_8(
    author: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    errors = {
        400: await author.post(RX_URL, content=b"{not json", headers=FHIR_JSON),
        401: await anonymous.get(RX_URL),
        404: await author.get(f"{RX_URL}/no-such-id"),
        406: await author.get("/fhir/metadata", headers={"accept": "text/html"}),
        415: await author.post(RX_URL, content=b"{}", headers={"content-type": "text/plain"}),
        422: await author.post(RX_URL, json=medication_request(status="draft"), headers=FHIR_JSON),
        # Refused by the header limit, before any route (gateway/limits.py).
        431: await author.get(RX_URL, headers={"x-padding": "x" * 20_000}),
    }
    for status, answer in errors.items():
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == FHIR_JSON_UTF8, status
        assert answer.json()["resourceType"] == "OperationOutcome"


# --- HEAD wherever GET works (http.html "HEAD") -------------------------------------------------


async def test_head_answers_as_get_without_a_body(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    for path in (
        f"{RX_URL}/{rx['id']}",
        f"{RX_URL}/{rx['id']}/_history/1",
        f"{RX_URL}/{rx['id']}/_history",
        f"{RX_URL}?_count=5",
        "/fhir/metadata",
    ):
        got = await author.get(path)
        head = await author.head(path)
        assert head.status_code == got.status_code == 200, path
        _no_body(head)
        for header in ("etag", "last-modified", "content-type", "content-length"):
            assert head.headers.get(header) == got.headers.get(header), (path, header)
        assert int(head.headers["content-length"]) == len(got.content), path


async def test_head_refusals_are_the_gets(
    author: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    unknown = await author.head(f"{RX_URL}/no-such-id")
    assert unknown.status_code == 404
    _no_body(unknown)
    assert unknown.headers["content-type"] == FHIR_JSON_UTF8

    unauthenticated = await anonymous.head(RX_URL)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    _no_body(unauthenticated)

    # Counted under the route template, as a GET is: never the concrete id (gateway/ops.py).
    metrics = (await author.get("/metrics")).text
    labels = ('method="HEAD"', 'route="/fhir/MedicationRequest/{logical_id}"', 'status="404"')
    assert any(all(label in line for label in labels) for line in metrics.splitlines())
    assert "no-such-id" not in metrics

    # An operation is POST only: HEAD, like GET, is 405.
    assert (await author.head(f"{RX_URL}/{'x' * 8}/$revoke")).status_code == 405


async def test_a_head_read_is_decided_and_audited_as_a_read(
    app: FastAPI, author: httpx.AsyncClient, colleague: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    assert (await author.head(f"{RX_URL}/{rx['id']}")).status_code == 200
    row = await last_audit(app)
    assert (row.action, row.outcome, row.resource_id) == ("read", "permit", rx["id"])

    # Another physician without the patient's consent: the same 403 as a GET, audited.
    refused = await colleague.head(f"{RX_URL}/{rx['id']}")
    assert refused.status_code == 403
    row = await last_audit(app)
    assert (row.action, row.outcome, row.resource_id) == ("read", "deny", rx["id"])


# --- conditional reads (http.html#cread) --------------------------------------------------------


@pytest.mark.parametrize(
    "if_none_match", ['W/"1"', '"1"', 'W/"7", W/"1"', "*", 'W/"7",W/"1"'], ids=str
)
async def test_if_none_match_with_the_current_etag_is_304(
    author: httpx.AsyncClient, if_none_match: str
) -> None:
    rx = await prescription(author)
    for path in (f"{RX_URL}/{rx['id']}", f"{RX_URL}/{rx['id']}/_history/1"):
        for method in ("GET", "HEAD"):
            answer = await author.request(method, path, headers={"if-none-match": if_none_match})
            assert answer.status_code == 304, (path, method)
            assert answer.headers["etag"] == 'W/"1"'
            assert "last-modified" in answer.headers
            _no_body(answer)


async def test_a_stale_etag_gets_the_new_version(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    assert (await revoke(author, rx["id"])).status_code == 200
    answer = await author.get(f"{RX_URL}/{rx['id']}", headers={"if-none-match": 'W/"1"'})
    assert answer.status_code == 200
    assert answer.headers["etag"] == 'W/"2"'
    assert answer.json()["status"] == "cancelled"
    # The first version itself has not changed.
    first = await author.get(f"{RX_URL}/{rx['id']}/_history/1", headers={"if-none-match": 'W/"1"'})
    assert first.status_code == 304


async def test_if_modified_since_not_older_than_last_modified_is_304(
    author: httpx.AsyncClient,
) -> None:
    rx = await prescription(author)
    path = f"{RX_URL}/{rx['id']}"
    last_modified = (await author.get(path)).headers["last-modified"]
    assert (await author.get(path, headers={"if-modified-since": last_modified})).status_code == 304

    earlier = format_datetime(
        parsedate_to_datetime(last_modified) - timedelta(seconds=1), usegmt=True
    )
    changed = await author.get(path, headers={"if-modified-since": earlier})
    assert changed.status_code == 200
    assert changed.json()["id"] == rx["id"]

    # Not an HTTP date: ignored (RFC 9110 13.1.3), the resource is sent.
    garbage = await author.get(path, headers={"if-modified-since": "yesterday"})
    assert garbage.status_code == 200

    # If-None-Match decides alone when both are sent (RFC 9110 13.2.2).
    both = {"if-none-match": 'W/"9"', "if-modified-since": last_modified}
    assert (await author.get(path, headers=both)).status_code == 200


async def test_RX_7_an_expired_prescription_is_sent_again_not_304(
    clock: Clock, author: httpx.AsyncClient
) -> None:
    rx = await prescription(author)
    clock.now = clock() + timedelta(days=100)  # past the default validity (RX-10)
    # The client's copy says active; the version is unchanged but the prescription now reads
    # stopped (computed, nothing written): a 304 would leave the client believing it is open.
    answer = await author.get(f"{RX_URL}/{rx['id']}", headers={"if-none-match": 'W/"1"'})
    assert answer.status_code == 200
    assert answer.json()["status"] == "stopped"


async def test_searches_and_writes_are_not_conditional_reads(author: httpx.AsyncClient) -> None:
    await prescription(author)
    search = await author.get(RX_URL, headers={"if-none-match": "*"})
    assert search.status_code == 200
    assert search.json()["total"] == 1
    created_anyway = await author.post(
        RX_URL, json=medication_request(), headers={**FHIR_JSON, "if-none-match": "*"}
    )
    assert created_anyway.status_code == 201


# --- legacy media types on input, XML refused (http.html#mime-type) -----------------------------


async def test_dstu2_json_media_type_is_accepted(author: httpx.AsyncClient) -> None:
    create = await author.post(
        RX_URL,
        content=orjson.dumps(medication_request()),
        headers={"content-type": "application/json+fhir; charset=UTF-8"},
    )
    assert create.status_code == 201, create.text
    assert create.headers["content-type"] == FHIR_JSON_UTF8
    path = f"{RX_URL}/{create.json()['id']}"

    accepted = await author.get(path, headers={"accept": "application/json+fhir"})
    assert accepted.status_code == 200
    assert accepted.headers["content-type"] == FHIR_JSON_UTF8

    for fmt in ("application/json+fhir", "application/fhir+json", "json"):
        assert (await author.get(path, params={"_format": fmt})).status_code == 200, fmt
    # An unencoded + typed by hand arrives as a space.
    typed = await author.get(f"{path}?_format=application/fhir+json")
    assert typed.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml"],
)
async def test_xml_bodies_are_415_saying_so(author: httpx.AsyncClient, content_type: str) -> None:
    answer = await author.post(RX_URL, content=b"<x/>", headers={"content-type": content_type})
    assert answer.status_code == 415
    assert "XML is not supported" in answer.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "accept", ["application/fhir+xml", "application/xml+fhir", "text/xml", "application/xml"]
)
async def test_asking_for_xml_is_406_saying_so(author: httpx.AsyncClient, accept: str) -> None:
    by_header = await author.get("/fhir/metadata", headers={"accept": accept})
    assert by_header.status_code == 406
    assert "XML is not supported" in by_header.json()["issue"][0]["diagnostics"]

    by_format = await author.get("/fhir/metadata", params={"_format": accept})
    assert by_format.status_code == 406
    issue = by_format.json()["issue"][0]
    assert "XML is not supported" in issue["diagnostics"]
    assert issue["expression"] == ["_format"]


async def test_format_xml_shorthand_is_406(author: httpx.AsyncClient) -> None:
    answer = await author.get(RX_URL, params={"_format": "xml"})
    assert answer.status_code == 406
    assert answer.json()["issue"][0]["expression"] == ["_format"]


# --- _pretty and _format on reads and searches (http.html#parameters) ---------------------------


async def test_pretty_true_indents_a_read_false_does_not(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    path = f"{RX_URL}/{rx['id']}"
    compact = await author.get(path, params={"_pretty": "false"})
    pretty = await author.get(path, params={"_pretty": "true"})
    assert compact.status_code == pretty.status_code == 200
    assert b"\n" not in compact.content
    assert pretty.content.startswith(b'{\n  "resourceType": "MedicationRequest",\n')
    assert pretty.json() == compact.json() == (await author.get(path)).json()
    assert int(pretty.headers["content-length"]) == len(pretty.content)
    assert pretty.headers["etag"] == compact.headers["etag"]

    head = await author.head(path, params={"_pretty": "true"})
    assert head.headers["content-length"] == pretty.headers["content-length"]

    vread = await author.get(f"{path}/_history/1", params={"_pretty": "true", "_format": "json"})
    assert vread.content.startswith(b"{\n  ")


async def test_pretty_indents_the_capability_statement_and_errors(
    author: httpx.AsyncClient,
) -> None:
    metadata = await author.get("/fhir/metadata", params={"_pretty": "true"})
    assert metadata.content.startswith(b'{\n  "resourceType": "CapabilityStatement"')
    missing = await author.get(f"{RX_URL}/no-such-id", params={"_pretty": "true"})
    assert missing.status_code == 404
    assert missing.content.startswith(b'{\n  "resourceType": "OperationOutcome"')


@pytest.mark.parametrize("value", ["yes", "1", ""])
async def test_pretty_takes_true_or_false(author: httpx.AsyncClient, value: str) -> None:
    answer = await author.get("/fhir/metadata", params={"_pretty": value})
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["expression"] == ["_pretty"]


async def test_format_is_accepted_on_searches(author: httpx.AsyncClient) -> None:
    await prescription(author)
    answer = await author.get(RX_URL, params={"_format": "application/fhir+json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == 1


async def test_pretty_is_accepted_on_searches(author: httpx.AsyncClient) -> None:
    await prescription(author)
    answer = await author.get(RX_URL, params={"_pretty": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(b'{\n  "resourceType": "Bundle"')
    assert answer.json()["total"] == 1


# --- Prefer: return=... on writes (http.html#return) --------------------------------------------


async def test_prefer_return_minimal_on_create(author: httpx.AsyncClient) -> None:
    answer = await author.post(
        RX_URL, json=medication_request(), headers={**FHIR_JSON, "prefer": "return=minimal"}
    )
    assert answer.status_code == 201
    _no_body(answer)
    assert answer.headers["preference-applied"] == "return=minimal"
    assert answer.headers["etag"] == 'W/"1"'
    assert "last-modified" in answer.headers
    stored = await author.get(answer.headers["location"])
    assert stored.status_code == 200
    assert stored.json()["status"] == "active"


async def test_prefer_return_operation_outcome_on_create(author: httpx.AsyncClient) -> None:
    answer = await author.post(
        RX_URL,
        json=medication_request(),
        headers={**FHIR_JSON, "prefer": "return=OperationOutcome"},
    )
    assert answer.status_code == 201
    assert answer.headers["preference-applied"] == "return=OperationOutcome"
    assert answer.headers["content-type"] == FHIR_JSON_UTF8
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert (issue["severity"], issue["code"]) == ("information", "informational")
    logical_id = answer.headers["location"].split("/")[-3]
    assert f"created MedicationRequest/{logical_id}" in issue["diagnostics"]


async def test_prefer_return_representation_and_no_prefer_give_the_resource(
    author: httpx.AsyncClient,
) -> None:
    explicit = await author.post(
        RX_URL,
        json=medication_request(),
        headers={**FHIR_JSON, "prefer": "return=representation"},
    )
    assert explicit.status_code == 201
    assert explicit.json()["resourceType"] == "MedicationRequest"
    assert explicit.headers["preference-applied"] == "return=representation"

    for prefer in (None, "return=nonsense", "handling=strict"):
        headers = FHIR_JSON if prefer is None else {**FHIR_JSON, "prefer": prefer}
        answer = await author.post(RX_URL, json=medication_request(), headers=headers)
        assert answer.status_code == 201, prefer
        assert answer.json()["resourceType"] == "MedicationRequest", prefer
        assert "preference-applied" not in answer.headers, prefer


async def test_prefer_on_update_and_on_an_operation(
    author: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    consent = await created(patient, informed_consent(proof=False))
    update = await patient.put(
        f"{CONSENT_URL}/{consent['id']}",
        json=consent | {"status": "inactive"},
        headers={**FHIR_JSON, "prefer": "return=minimal"},
    )
    assert update.status_code == 200, update.text
    _no_body(update)
    assert update.headers["etag"] == 'W/"2"'
    assert update.headers["preference-applied"] == "return=minimal"
    assert (await patient.get(f"{CONSENT_URL}/{consent['id']}")).json()["status"] == "inactive"

    rx = await prescription(author)
    revoked = await revoke(author, rx["id"], prefer="return=OperationOutcome")
    assert revoked.status_code == 200, revoked.text
    issue = revoked.json()["issue"][0]
    assert issue["severity"] == "information"
    assert f"$revoke done on MedicationRequest/{rx['id']}, now at version 2" == issue["diagnostics"]


async def test_prefer_on_a_conditional_create_that_matches(author: httpx.AsyncClient) -> None:
    identifier = [{"system": "urn:example:my-his", "value": "rx-prefer-1"}]
    headers = {
        **FHIR_JSON,
        "if-none-exist": "identifier=urn:example:my-his|rx-prefer-1",
        "prefer": "return=minimal",
    }
    first = await author.post(
        RX_URL, json=medication_request(identifier=identifier), headers=headers
    )
    again = await author.post(
        RX_URL, json=medication_request(identifier=identifier), headers=headers
    )
    assert (first.status_code, again.status_code) == (201, 200)
    _no_body(again)
    assert again.headers["location"] == first.headers["location"]


async def test_prefer_is_ignored_on_reads(author: httpx.AsyncClient) -> None:
    rx = await prescription(author)
    for prefer in ("return=minimal", "return=OperationOutcome"):
        answer = await author.get(f"{RX_URL}/{rx['id']}", headers={"prefer": prefer})
        assert answer.status_code == 200
        assert answer.json()["id"] == rx["id"]
        assert "preference-applied" not in answer.headers
