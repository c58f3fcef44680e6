"""Media types, body limits, malformed input, authentication and request ids: never a 500."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from tests.fhir_profiles.factories import SSIN, medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.fhir import FHIR_JSON

URL = "/fhir/MedicationRequest"


async def test_json_media_types_are_accepted(prescriber: httpx.AsyncClient) -> None:
    import orjson

    for content_type in (
        "application/fhir+json",
        "application/json; charset=utf-8",
        "application/fhir+json;fhirVersion=4.0",
    ):
        response = await prescriber.post(
            URL, content=orjson.dumps(medication_request()), headers={"content-type": content_type}
        )
        assert response.status_code == 201, content_type


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/fhir+xml", ""]
)
async def test_other_media_types_are_415(prescriber: httpx.AsyncClient, content_type: str) -> None:
    response = await prescriber.post(URL, content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("accept", ["application/fhir+xml", "text/html", "application/json;q=0"])
async def test_unsupported_accept_is_406(prescriber: httpx.AsyncClient, accept: str) -> None:
    response = await prescriber.get("/fhir/metadata", headers={"accept": accept})
    assert response.status_code == 406
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_format_parameter_overrides_accept(prescriber: httpx.AsyncClient) -> None:
    assert (await prescriber.get("/fhir/metadata", params={"_format": "xml"})).status_code == 406
    ok = await prescriber.get(
        "/fhir/metadata", params={"_format": "json"}, headers={"accept": "text/html"}
    )
    assert ok.status_code == 200


async def test_accept_wildcards_are_fine(prescriber: httpx.AsyncClient) -> None:
    for accept in ("*/*", "application/*", "text/html, application/json;q=0.5"):
        assert (
            await prescriber.get("/fhir/metadata", headers={"accept": accept})
        ).status_code == 200


@pytest.mark.parametrize(
    ("content", "expression"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'"a string"', None),
        (b'{"resourceType": "Patient"}', "resourceType"),
        (b"{}", "resourceType"),
    ],
)
async def test_malformed_bodies_are_400(
    prescriber: httpx.AsyncClient, content: bytes, expression: str | None
) -> None:
    response = await prescriber.post(URL, content=content, headers=FHIR_JSON)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    if expression:
        assert issue["expression"] == [expression]


async def test_body_over_the_limit_is_413(prescriber: httpx.AsyncClient, app: object) -> None:
    limit = app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    padded = medication_request(note=[{"text": "x" * limit}])
    import orjson

    response = await prescriber.post(URL, content=orjson.dumps(padded), headers=FHIR_JSON)
    assert response.status_code == 413

    async def chunks():  # no Content-Length: the limit still holds while streaming
        yield b'{"resourceType": "MedicationRequest", "note": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    streamed = await prescriber.post(URL, content=chunks(), headers=FHIR_JSON)
    assert streamed.status_code == 413


async def test_no_credentials_is_401_with_bearer_challenge(anonymous: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", URL),
        ("POST", URL),
        ("GET", f"{URL}/x"),
        ("GET", f"{URL}/x/_history"),
    ):
        response = await anonymous.request(
            method, path, json=medication_request() if method == "POST" else None
        )
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["issue"][0]["code"] == "login"


@pytest.mark.parametrize("path", [URL, "/fhir/MedicationDispense", "/fhir/Claim"])
async def test_creates_authenticate_and_authorise_before_reading_the_body(
    path: str, anonymous: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    """Who calls is settled before the body is looked at: no token is 401 and a role that may not
    create is 403 even for a body of the wrong media type, which would be 415 for a caller who may
    (the hot creates check the caller, then read the body: gateway.access.routes.caller_and_body)."""
    xml = {"content-type": "application/fhir+xml"}
    refused = await anonymous.post(path, content=b"<MedicationRequest/>", headers=xml)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    fund = await client_for("fund")  # a sickness fund creates none of them
    forbidden = await fund.post(path, content=b"<MedicationRequest/>", headers=xml)
    assert forbidden.status_code == 403
    assert forbidden.json()["issue"][0]["code"] == "forbidden"


async def test_pharmacist_cannot_create_a_prescription(pharmacist: httpx.AsyncClient) -> None:
    response = await pharmacist.post(URL, json=medication_request(), headers=FHIR_JSON)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


async def test_prescriber_cannot_write_in_another_prescribers_name(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(nihdi="12345625004")
    response = await prescriber.post(URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 403


async def test_request_id_is_echoed_or_generated(prescriber: httpx.AsyncClient) -> None:
    echoed = await prescriber.get("/fhir/metadata", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await prescriber.get("/fhir/metadata")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await prescriber.get("/fhir/metadata", headers={"x-request-id": "bad id with spaces"})
    assert unsafe.headers["x-request-id"] != "bad id with spaces"


async def test_unexpected_errors_are_a_bland_500_logged_with_the_request_id(
    prescriber: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.prescriptions.service import PrescriptionService

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(PrescriptionService, "read", explode)
    with capture_logs() as logs:
        response = await prescriber.get(f"{URL}/anything", headers={"x-request-id": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "secret internal detail" not in response.text
    assert "req-500" in outcome["issue"][0]["diagnostics"]
    errors = [e for e in logs if e["event"] == "unhandled_error"]
    assert errors
    assert errors[0]["error_type"] == "RuntimeError"


async def test_ssin_never_reaches_the_logs(prescriber: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        await prescriber.post(URL, json=medication_request(), headers=FHIR_JSON)
        await prescriber.get(URL, params={"patient:identifier": SSIN})
        await prescriber.post(
            URL,
            json=medication_request(ssin="85073003329"),
            headers=FHIR_JSON,
        )
    assert logs, "requests are logged"
    assert SSIN not in repr(logs)
    assert "85073003329" not in repr(logs)
