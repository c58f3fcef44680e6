"""FHIR's JSON rules at the door, server-managed state out of clients' reach, and no 500 for what a
client sends (FHIR R4 json.html, http.html#create; domain RX-5, RX-7, RX-13, RX-25, CO-2, AT-3).

Every body route reads its body through one door (``gateway.fhir.negotiation``): a breach is a 400
whose ``expression`` names the element, and neither the answer nor the logs repeat the value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from fhir_profiles import systems
from tests.claims.factories import cancel_params, claim, item
from tests.consents.factories import (
    RX_URL,
    SSIN,
    URL,
    eid,
    informed_consent,
    prescription,
    relationship,
)
from tests.dispenses.factories import (
    LIFECYCLE,
    MD_URL,
    dispense,
    fetch,
    operation,
    parameters,
    state_of,
)
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

OFFENDING = SSIN  # what a careless client might put where it does not belong: never echoed


def _revoke() -> dict[str, Any]:
    return parameters(reason="wrong dose")


# Every route that reads a body: (role, method, path, a valid body of its kind).
BODY_ROUTES: list[tuple[str, str, str, Callable[[], dict[str, Any]]]] = [
    ("prescriber", "POST", RX_URL, medication_request),
    ("prescriber", "POST", f"{RX_URL}/some-id/$revoke", _revoke),
    (
        "prescriber",
        "POST",
        f"{RX_URL}/some-id/$set-visibility",
        lambda: {"resourceType": "Parameters"},
    ),
    (
        "pharmacist",
        "POST",
        f"{RX_URL}/some-id/$take-in-process",
        lambda: {"resourceType": "Parameters"},
    ),
    ("pharmacist", "POST", MD_URL, lambda: dispense(rid="BEP0000000AB")),
    ("pharmacist", "POST", f"{MD_URL}/some-id/$undo", lambda: {"resourceType": "Parameters"}),
    ("prescriber", "POST", "/fhir/Claim", claim),
    ("prescriber", "POST", "/fhir/Claim/some-id/$cancel", cancel_params),
    ("prescriber", "POST", URL, lambda: informed_consent()),
    ("prescriber", "PUT", f"{URL}/some-id", lambda: informed_consent()),
]
ROUTE_IDS = [f"{method} {path}" for _role, method, path, _body in BODY_ROUTES]


def _raw(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


# Each breach: (how to break a valid body into raw bytes, the path below the root it names).
BREACHES: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "control character": (
        lambda b: _raw({**b, "meta": {"source": f"urn:x:{OFFENDING}\u0000"}}),
        "meta.source",
    ),
    "escape character": (
        lambda b: _raw({**b, "meta": {"source": f"urn:x:{OFFENDING}\u001b[2J"}}),
        "meta.source",
    ),
    "empty string": (lambda b: _raw({**b, "meta": {"source": ""}}), "meta.source"),
    "empty object": (lambda b: _raw({**b, "meta": {}}), "meta"),
    "empty array": (lambda b: _raw({**b, "meta": {"tag": []}}), "meta.tag"),
    "null property": (lambda b: _raw({**b, "meta": {"source": None}}), "meta.source"),
    "null in an array": (
        lambda b: _raw({**b, "meta": {"profile": ["http://example.org/p", None]}}),
        "meta.profile[1]",
    ),
    "duplicate key": (
        lambda b: _raw({**b, "meta": {"source": "urn:x:first"}}).replace(
            b'"source":"urn:x:first"',
            b'"source":"urn:x:first","source":"urn:x:' + OFFENDING.encode() + b'"',
        ),
        "meta.source",
    ),
}


def _root(body: dict[str, Any]) -> str:
    return str(body["resourceType"])


@pytest.mark.parametrize("breach", BREACHES)
@pytest.mark.parametrize(("role", "method", "path", "valid"), BODY_ROUTES, ids=ROUTE_IDS)
async def test_fhir_json_rules_are_a_400_naming_the_element_on_every_body_route(
    client_for: ClientFactory,
    role: str,
    method: str,
    path: str,
    valid: Callable[[], dict[str, Any]],
    breach: str,
) -> None:
    client = await client_for(role)
    body = valid()
    breaking, where = BREACHES[breach]
    with capture_logs() as logs:
        response = await client.request(method, path, content=breaking(body), headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "invalid"
    assert issue["expression"] == [f"{_root(body)}.{where}"]
    assert OFFENDING not in response.text
    assert OFFENDING not in repr(logs)


async def test_fhir_json_a_control_character_in_a_note_is_refused_and_nothing_is_stored(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(
        identifier=[{"system": "urn:example:his", "value": "rx-nul"}],
        note=[{"text": "take with food\u0000"}],
    )
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["MedicationRequest.note[0].text"]
    assert "take with food" not in response.text
    found = await prescriber.get(RX_URL, params={"identifier": "urn:example:his|rx-nul"})
    assert found.json()["total"] == 0


async def test_fhir_json_tab_cr_and_lf_are_allowed_in_strings(
    prescriber: httpx.AsyncClient,
) -> None:
    note = "morning:\t1 tablet\r\nevening:\t2 tablets"
    response = await prescriber.post(
        RX_URL, json=medication_request(note=[{"text": note}]), headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    assert response.json()["note"][0]["text"] == note


async def test_fhir_json_a_duplicate_key_deep_in_the_body_is_named(
    prescriber: httpx.AsyncClient,
) -> None:
    raw = _raw(medication_request()).replace(
        b'"quantity":{"value":1,', b'"quantity":{"value":1,"value":12,'
    )
    response = await prescriber.post(RX_URL, content=raw, headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [
        "MedicationRequest.dispenseRequest.quantity.value"
    ]


async def test_fhir_json_null_aligns_a_repeating_primitive_with_its_extensions(
    prescriber: httpx.AsyncClient,
) -> None:
    """json.html: ``"x": ["a", null], "_x": [null, {...}]`` is how a repeating primitive carries an
    extension on one of its items, or an item that has only an extension."""
    extension = {"extension": [{"url": "http://example.org/why", "valueString": "local protocol"}]}
    body = medication_request(
        instantiatesUri=["http://example.org/protocol/1", None],
        _instantiatesUri=[None, extension],
    )
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["instantiatesUri"] == ["http://example.org/protocol/1", None]
    assert stored["_instantiatesUri"] == [None, extension]


@pytest.mark.parametrize(
    ("values", "extensions", "where"),
    [
        (["http://example.org/p", None], None, "instantiatesUri[1]"),  # no partner array
        (["http://example.org/p", None], [None, None], "instantiatesUri[1]"),  # null on both sides
        (["http://example.org/p"], [None, {"id": "x"}], "_instantiatesUri[0]"),  # not aligned
    ],
)
async def test_fhir_json_null_anywhere_else_is_refused(
    prescriber: httpx.AsyncClient,
    values: list[Any],
    extensions: list[Any] | None,
    where: str,
) -> None:
    body = medication_request(instantiatesUri=values)
    if extensions is not None:
        body["_instantiatesUri"] = extensions
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == [f"MedicationRequest.{where}"]


async def test_fhir_json_a_property_name_that_is_no_element_name_is_refused_unquoted(
    prescriber: httpx.AsyncClient,
) -> None:
    body = medication_request(subject={"identifier": {"system": systems.SSIN, OFFENDING: "x"}})
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["MedicationRequest.subject.identifier"]
    assert OFFENDING not in response.text


async def test_fhir_json_nesting_beyond_any_resource_is_refused(
    prescriber: httpx.AsyncClient,
) -> None:
    deep: dict[str, Any] = {"text": "x"}
    for _ in range(200):
        deep = {"extension": [{"url": "http://example.org/e", "extension": [deep]}]}
    response = await prescriber.post(
        RX_URL, json=medication_request(note=[deep]), headers=FHIR_JSON
    )
    assert response.status_code == 400
    assert "nested deeper" in response.json()["issue"][0]["diagnostics"]


# --- server-managed state -----------------------------------------------------------------------


async def test_rx7_the_lifecycle_extension_from_a_client_is_refused(
    prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    body = medication_request(
        identifier=[{"system": "urn:example:his", "value": "rx-delivered"}],
        extension=[{"url": LIFECYCLE, "extension": [{"url": "state", "valueCode": "delivered"}]}],
    )
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["MedicationRequest.extension[0]"]
    assert issue["details"]["coding"][0]["code"] == "RX-7"
    found = await prescriber.get(RX_URL, params={"identifier": "urn:example:his|rx-delivered"})
    assert found.json()["total"] == 0


async def test_rx7_a_new_prescription_reads_open_to_the_pharmacy(
    prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    """Only the gateway writes the state: what the pharmacy sees is the gateway's."""
    written = await prescription(prescriber)
    seen = await pharmacist.get(RX_URL, params={"identifier": rid_of(written)})
    assert state_of(seen.json()["entry"][0]["resource"]) == "open"


async def test_fhir_create_ignores_the_clients_id_and_version_metadata(
    prescriber: httpx.AsyncClient,
) -> None:
    """http.html#create: the server ignores ``id`` and ``meta.versionId``/``meta.lastUpdated``."""
    body = medication_request(
        id="chosen-by-client",
        meta={"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z", "source": "urn:his:1"},
    )
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["id"] != "chosen-by-client"
    assert made["meta"]["versionId"] == "1"
    written = datetime.fromisoformat(made["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert written > datetime.now(UTC) - timedelta(minutes=5)
    assert made["meta"]["source"] == "urn:his:1"  # what the client may say stays
    assert (await prescriber.get(f"{RX_URL}/chosen-by-client")).status_code == 404


async def test_rx5_a_rid_sent_by_the_client_is_refused(prescriber: httpx.AsyncClient) -> None:
    body = medication_request(identifier=[{"system": systems.RID, "value": "BEP0000000AB"}])
    response = await prescriber.post(RX_URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 422
    assert "RX-5" in [i["details"]["coding"][0]["code"] for i in response.json()["issue"]]


# --- operation parameters are FHIR datatypes ----------------------------------------------------


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": "wrong dose"},
        {"text": "wrong dose", "colour": "red"},
        {"coding": [{"system": "http://example.org/reasons", "code": ["a", "b"]}]},
    ],
)
async def test_rx7_revoke_reason_must_be_a_codeable_concept(
    prescriber: httpx.AsyncClient, concept: dict[str, Any]
) -> None:
    written = await prescription(prescriber)
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueCodeableConcept": concept}],
    }
    response = await operation(prescriber, f"MedicationRequest/{written['id']}/$revoke", body)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"][0].startswith(
        "Parameters.parameter[0].valueCodeableConcept"
    )
    after = await fetch(prescriber, written["id"])
    assert after["status"] == "active"
    assert "statusReason" not in after


async def test_rx7_revoke_keeps_a_valid_codeable_concept(prescriber: httpx.AsyncClient) -> None:
    written = await prescription(prescriber)
    concept = {
        "coding": [{"system": "http://example.org/reasons", "code": "dose"}],
        "text": "wrong dose",
    }
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueCodeableConcept": concept}],
    }
    response = await operation(prescriber, f"MedicationRequest/{written['id']}/$revoke", body)
    assert response.status_code == 200, response.text
    assert response.json()["statusReason"] == concept


async def test_rx7_undo_reason_must_be_a_codeable_concept(
    prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient
) -> None:
    written = await prescription(prescriber)
    made = await pharmacist.post(MD_URL, json=dispense(rid=rid_of(written)), headers=FHIR_JSON)
    assert made.status_code == 201, made.text
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueCodeableConcept": {"coding": {"code": "x"}}}],
    }
    response = await operation(pharmacist, f"MedicationDispense/{made.json()['id']}/$undo", body)
    assert response.status_code == 400, response.text
    assert state_of(await fetch(prescriber, written["id"])) == "delivered"


async def test_rx15_reserve_pharmacy_must_be_an_identifier(
    prescriber: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    written = await prescription(prescriber)
    patient = await client_for("patient", ssin=SSIN)
    identifier = {
        "system": systems.NIHDI_ORGANIZATION,
        "value": PHARMACY_NIHDI,
        "period": "until Friday",
    }
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "pharmacy", "valueIdentifier": identifier}],
    }
    response = await operation(patient, f"MedicationRequest/{written['id']}/$reserve", body)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [
        "Parameters.parameter[0].valueIdentifier.period"
    ]
    assert state_of(await fetch(prescriber, written["id"])) == "open"


async def test_rx13_a_visibility_parameter_has_one_value(
    prescriber: httpx.AsyncClient, client_for: ClientFactory
) -> None:
    written = await prescription(prescriber)
    patient = await client_for("patient", ssin=SSIN)
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "prescribers", "valueCode": "closed", "valueString": "open"}],
    }
    response = await operation(patient, f"MedicationRequest/{written['id']}/$set-visibility", body)
    assert response.status_code == 400, response.text
    assert "extension" not in await fetch(prescriber, written["id"])


# --- event dates: 1900 to 2200 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "handed_over",
    ["0001-01-01T00:00:00+14:00", "1899-12-31T23:00:00+01:00", "0001-01-01T10:00:00Z"],
)
async def test_rx25_when_handed_over_is_an_event_between_1900_and_2200(
    prescriber: httpx.AsyncClient, pharmacist: httpx.AsyncClient, handed_over: str
) -> None:
    written = await prescription(prescriber)
    response = await pharmacist.post(
        MD_URL, json=dispense(rid=rid_of(written), whenHandedOver=handed_over), headers=FHIR_JSON
    )
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["MedicationDispense.whenHandedOver"]
    assert issue["details"]["coding"][0]["code"] == "RX-25"
    assert state_of(await fetch(prescriber, written["id"])) == "open"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"dateTime": "1850-06-01T10:00:00+01:00"}, "Consent.dateTime"),
        ({"dateTime": "9999-12-31T23:00:00-05:00"}, "Consent.dateTime"),
        (
            {"verification": eid(read_at=datetime(1, 1, 1, tzinfo=UTC))},
            "Consent.verification[0]",
        ),
        (
            {"provision": {"type": "permit", "period": {"end": "9999-12-31T23:00:00-05:00"}}},
            "Consent.provision.period.end",
        ),
    ],
)
async def test_co2_consent_dates_are_events_between_1900_and_2200(
    prescriber: httpx.AsyncClient, change: dict[str, Any], where: str
) -> None:
    response = await prescriber.post(URL, json=informed_consent(**change), headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert where in [i["expression"][0] for i in response.json()["issue"]]


async def test_co7_a_relationship_start_is_an_event_between_1900_and_2200(
    prescriber: httpx.AsyncClient,
) -> None:
    body = relationship(PRESCRIBER_NIHDI)
    body["provision"]["period"] = {"start": "0001-01-01T00:00:00+14:00"}
    response = await prescriber.post(URL, json=body, headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert "Consent.provision.period.start" in [
        i["expression"][0] for i in response.json()["issue"]
    ]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (claim(created="1899-12-31"), "Claim.created"),
        (claim(created="0001-01-01T00:00:00+14:00"), "Claim.created"),
        (claim(items=[item(serviced="1899-12-31")]), "Claim.item[0].servicedDate"),
    ],
)
async def test_at3_claim_dates_are_events_between_1900_and_2200(
    prescriber: httpx.AsyncClient, body: dict[str, Any], where: str
) -> None:
    response = await prescriber.post(
        "/fhir/Claim", json=body, headers={**FHIR_JSON, "Idempotency-Key": "k-1"}
    )
    assert response.status_code == 422, response.text
    assert where in [i["expression"][0] for i in response.json()["issue"]]


# --- never a 500 ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["²", "٣", "1e3", "-1", "0x10"])
async def test_count_that_is_no_ascii_number_is_400(
    prescriber: httpx.AsyncClient, count: str
) -> None:
    response = await prescriber.get(RX_URL, params={"patient:identifier": SSIN, "_count": count})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["_count"]


async def test_a_count_too_long_for_int_is_the_maximum(prescriber: httpx.AsyncClient) -> None:
    response = await prescriber.get(
        RX_URL, params={"patient:identifier": f"{systems.SSIN}|{SSIN}", "_count": "9" * 5000}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("version", ["9223372036854775808", "²", "1" * 5000, "0x1"])
async def test_history_version_that_is_no_version_is_404(
    prescriber: httpx.AsyncClient, version: str
) -> None:
    written = await prescription(prescriber)
    for path in (f"{RX_URL}/{written['id']}", "/fhir/Claim/x", f"{URL}/x"):
        response = await prescriber.get(f"{path}/_history/{version}")
        assert response.status_code == 404, (path, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("logical_id", ["%00", "%C3%A9t%C3%A9", "x" * 65, "a%20b"])
@pytest.mark.parametrize(
    "route", [RX_URL, MD_URL, "/fhir/Claim", "/fhir/ClaimResponse", URL, "/fhir/AuditEvent"]
)
async def test_an_id_that_is_no_fhir_id_is_404_before_any_lookup(
    client_for: ClientFactory, route: str, logical_id: str
) -> None:
    """datatypes.html#id: [A-Za-z0-9-.]{1,64}; anything else names nothing (a NUL used to be a
    500 on PostgreSQL)."""
    admin = await client_for("admin")
    response = await admin.get(f"{route}/{logical_id}")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize("tag", ['W/"²"', 'W/"9223372036854775808"', "W/"])
async def test_if_match_that_is_no_version_is_400(prescriber: httpx.AsyncClient, tag: str) -> None:
    written = await prescription(prescriber)
    response = await prescriber.post(
        f"{RX_URL}/{written['id']}/$revoke",
        json=_revoke(),
        headers={**FHIR_JSON, "If-Match": tag.encode("latin-1")},  # as a raw header byte
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["If-Match"]


async def _disconnect_mid_body(app: FastAPI, token: str) -> list[dict[str, Any]]:
    """POST half a body, then the client goes away; returns what the app tried to send."""
    messages = iter(
        [
            {"type": "http.request", "body": b'{"resourceType": "Medicat', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": RX_URL,
        "raw_path": RX_URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/fhir+json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    await app(scope, receive, send)
    return sent


async def test_a_client_disconnecting_mid_body_is_no_error(
    app: FastAPI, prescriber: httpx.AsyncClient
) -> None:
    token = prescriber.headers["authorization"].removeprefix("Bearer ")
    with capture_logs() as logs:
        sent = await _disconnect_mid_body(app, token)
    assert not any(e["event"] == "unhandled_error" for e in logs)
    assert not any(e.get("log_level") in ("error", "critical") for e in logs)
    [disconnected] = [e for e in logs if e["event"] == "client_disconnected"]
    assert disconnected["log_level"] == "info"
    [request] = [e for e in logs if e["event"] == "request"]
    assert request["status"] == 499  # nginx's "client closed request", never a 500
    assert all(m.get("status") != 500 for m in sent)


# --- logs -------------------------------------------------------------------------------------


async def test_an_unexpected_error_is_logged_without_its_message(
    prescriber: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``int()`` and friends quote the value they refused: the log keeps the type and the frames."""
    from gateway.prescriptions.service import PrescriptionService

    async def explode(*_args: object, **_kwargs: object) -> None:
        int(OFFENDING + "x")

    monkeypatch.setattr(PrescriptionService, "read", explode)
    with capture_logs() as logs:
        response = await prescriber.get(f"{RX_URL}/anything")
    assert response.status_code == 500
    [error] = [e for e in logs if e["event"] == "unhandled_error"]
    assert error["error_type"] == "ValueError"
    assert any("explode" in frame for frame in error["frames"])
    assert OFFENDING not in repr(logs)


async def test_the_access_log_names_the_route_not_the_ids_a_client_typed(
    prescriber: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        response = await prescriber.get(f"{RX_URL}/{OFFENDING}/_history/{OFFENDING}")
    assert response.status_code == 404
    [request] = [e for e in logs if e["event"] == "request"]
    assert request["route"] == "/fhir/MedicationRequest/{logical_id}/_history/{version_id}"
    assert OFFENDING not in repr(logs)
