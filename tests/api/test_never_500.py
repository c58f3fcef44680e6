"""Never a 5xx for anything a client sends (docs/architecture.md 4: "unknown or malformed input never gives a
500"), at every route the app has, for every kind of caller.

Hypothesis throws generated search parameters, path ids and bodies at the routes enumerated from
``app.routes`` (a new route is covered without touching this file), each call as one of the roles
(or anonymous). Every answer is a success, a redirect or a 4xx; under ``/fhir`` a 4xx is an
OperationOutcome. Generated values often carry ``MARKER``, a valid SSIN that nothing else here
uses: it must never reach a log line, whatever the gateway made of the request.

Lean and stable for CI: derandomized (the same examples every run), no example database, a few
hundred calls over the real ASGI app and database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from fhir_profiles import systems
from gateway.settings import Settings
from tests.claims.factories import cancel_params, claim
from tests.consents.factories import SSIN, informed_consent, relationship
from tests.dispenses.factories import dispense, parameters
from tests.fhir_profiles.factories import medication_request
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import PHARMACY_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.fhir import FHIR_JSON, rid_of

MARKER = "93051822361"  # valid check digits, so it looks like a patient's SSIN to every rule
ROLES = ("prescriber", "pharmacist", "patient", "admin", None)
LENIENT = hypothesis_settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
# Fields the gateway fills itself on every log line: no client value reaches them.
_OWN_FIELDS = frozenset({"event", "log_level", "method", "route", "status", "ms", "request_id"})
_PARAM = re.compile(r"\{([A-Za-z_]+)(?::[a-z]+)?\}")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A fund to route claims to (never called: no worker runs here)."""
    return settings.model_copy(
        update={"mutuality_urls": {"100": "http://funds.test/100"}, "worker_in_process": False}
    )


@dataclass
class World:
    """The callers, and resources that exist, so that generated ids sometimes hit real ones."""

    clients: dict[str | None, httpx.AsyncClient]
    ids: list[str]
    routes: list[tuple[str, str]]  # (method, path template), from app.routes


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    found = {
        (method, str(context.path))
        for context in iter_route_contexts(app.routes)
        for method in context.methods or ()
        if method != "HEAD" and context.path
    }
    return sorted(found)


@pytest.fixture
async def world(app: FastAPI, client_for: ClientFactory) -> World:
    clients: dict[str | None, httpx.AsyncClient] = {
        "prescriber": await client_for("prescriber", nihdi=PRESCRIBER_NIHDI),
        "pharmacist": await client_for("pharmacist", nihdi=PHARMACY_NIHDI),
        "patient": await client_for("patient", ssin=SSIN),
        "admin": await client_for("admin"),
        None: await client_for(None),
    }
    prescriber, pharmacist = clients["prescriber"], clients["pharmacist"]
    written = (
        await prescriber.post(
            "/fhir/MedicationRequest", json=medication_request(), headers=FHIR_JSON
        )
    ).json()
    other = (
        await prescriber.post(
            "/fhir/MedicationRequest", json=medication_request(), headers=FHIR_JSON
        )
    ).json()
    dispensed = (
        await pharmacist.post(
            "/fhir/MedicationDispense", json=dispense(rid=rid_of(other)), headers=FHIR_JSON
        )
    ).json()
    consent = (
        await clients["patient"].post(
            "/fhir/Consent", json=informed_consent(proof=False), headers=FHIR_JSON
        )
    ).json()
    attested = (
        await prescriber.post(
            "/fhir/Claim", json=claim(), headers={**FHIR_JSON, "Idempotency-Key": "k"}
        )
    ).json()
    ids = [written["id"], other["id"], dispensed["id"], consent["id"], attested["id"]]
    assert all(isinstance(i, str) for i in ids), ids
    return World(clients, ids, app_routes(app))


# --- what clients send ----------------------------------------------------------------------------

# Values that broke something once, or sit on a boundary (ints, dates, Unicode digits, SSINs).
TRICKY = [
    "",
    "²",
    "٣",
    "-1",
    "0",
    "9" * 40,
    "9223372036854775808",
    "1e400",
    "9999-12-31",
    "ge9999-12-31",
    "lt0001-01-01",
    "eq9999-12-31T23:59:59-05:00",
    "ge0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "BEP0000000AB",
    MARKER,
    f"{systems.SSIN}|{MARKER}",
    f"|{MARKER}",
    f"{MARKER}|",
    "\x00",
    "%00",
    "../..",
    'W/"1"',
]
texts = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=24),
    st.text(max_size=12).map(lambda t: t + MARKER),
)
PARAM_NAMES = [
    "_count",
    "_cursor",
    "_format",
    "identifier",
    "patient",
    "patient:identifier",
    "status",
    "authoredon",
    "date",
    "prescription",
    "request",
    "category",
    "actor",
    "actor:identifier",
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "lang",
    # The common parameters (FHIR R4 search.html#all) and the sealed links of POST _search.
    "_summary",
    "_elements",
    "_sort",
    "_total",
    "_id",
    "_lastUpdated",
    "_pretty",
    "_query",
]
COMMON_VALUES = st.sampled_from(
    ["count", "true", "data", "-authoredon", "_lastUpdated", "-date", "none", "status,id", "ge2026"]
)
params = st.dictionaries(
    st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=10)),
    st.one_of(texts, COMMON_VALUES),
    max_size=4,
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts)
json_values = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["extension", "url", "value", "coding", "_given"]),
                st.text(max_size=8),
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
# Values that keep FHIR's JSON rules, so that a body gets past the door to the profile rules.
names = st.from_regex(r"[a-z][A-Za-z]{0,11}", fullmatch=True)
fhir_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(
            st.characters(min_codepoint=32, exclude_categories=("Cs",)), min_size=1, max_size=16
        ),
        st.sampled_from([t for t in TRICKY if t and t.isprintable()]),
    ),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.dictionaries(names, children, min_size=1, max_size=3),
    ),
    max_leaves=6,
)
# Dates that mean an event, as clients might type them (with offsets that overflow UTC).
dates = st.builds(
    lambda year, offset: f"{year:04d}-12-31T23:30:00{offset}",
    st.sampled_from([1, 1899, 1900, 2026, 2200, 2201, 9999]),
    st.sampled_from(["Z", "+14:00", "-12:00", "+01:00"]),
) | st.sampled_from(["9999-12-31", "0001-01-01", "2026-13-01", "2026"])

VALID_BODIES = {
    "MedicationRequest": medication_request,
    "MedicationDispense": lambda: dispense(rid="BEP0000000AB"),
    "Claim": claim,
    "Consent": lambda: relationship(PRESCRIBER_NIHDI),
    "Parameters": lambda: parameters(reason="wrong dose", pharmacy=PHARMACY_NIHDI),
    "cancel": cancel_params,
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] + [path]
    return [path]


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], rest, new)}
    copy = list(body)
    copy[head] = _replaced(body[head], rest, new)
    return copy


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> bytes:
    """A valid body of ``kind`` with one element replaced, or any JSON, or any bytes."""
    how = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if how == "bytes":
        return draw(st.binary(max_size=64))
    if how == "json":
        return json.dumps(draw(json_values)).encode()
    valid = VALID_BODIES[kind]()
    path = draw(st.sampled_from(_leaves(valid)))
    new = draw(st.one_of(fhir_values, fhir_values, json_values, dates, st.just(MARKER)))
    return json.dumps(_replaced(valid, path, new)).encode()


def _body_kind(path: str) -> str:
    if path.endswith("$cancel"):
        return "cancel"
    if "$" in path or "{operation}" in path:
        return "Parameters"
    parts = path.split("/")
    return parts[2] if len(parts) > 2 and parts[2] in VALID_BODIES else "MedicationRequest"


def _fitting_roles(template: str) -> list[str | None]:
    """The roles a route serves, so that most calls get past authorisation to the rules."""
    if "MedicationDispense" in template:
        return ["pharmacist"]
    if "$set-visibility" in template or "{operation}" in template:
        return ["patient", "pharmacist", "prescriber"]
    if "Consent" in template:
        return ["prescriber", "patient"]
    if template.startswith("/fhir"):
        return ["prescriber"]
    return list(ROLES)


def _role(data: st.DataObject, template: str) -> str | None:
    fitting = _fitting_roles(template)
    return data.draw(
        st.one_of(st.sampled_from(fitting), st.sampled_from(fitting), st.sampled_from(ROLES))
    )


def _url(template: str, ids: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: quote(ids.get(m.group(1), "x"), safe=""), template)


# --- the property ---------------------------------------------------------------------------------


async def _call(
    world: World,
    role: str | None,
    method: str,
    url: str,
    sent: tuple[str, ...] = (),
    **kwargs: Any,
) -> None:
    """One call: never a 5xx, a FHIR 4xx is an OperationOutcome, and no log line carries the
    marker or any other value the client sent (``sent``, long enough not to match by chance)."""
    client = world.clients[role]
    with capture_logs() as logs:
        response = await client.request(method, url, **kwargs)
    where = f"{role} {method} {url}"
    assert response.status_code < 500, (where, response.status_code, response.text[:500])
    if url.startswith("/fhir") and 400 <= response.status_code < 500:
        assert response.json()["resourceType"] == "OperationOutcome", where
    assert MARKER not in repr(logs), (where, logs)
    # The access line's own fields (route template, status...) may match a value by chance.
    logged = " ".join(
        str(value) for event in logs for key, value in event.items() if key not in _OWN_FIELDS
    )
    for value in sent:
        if len(value) >= 8 and value not in world.ids:
            assert value not in logged, (where, value, logs)


@LENIENT
@given(data=st.data())
async def test_never_500_for_generated_search_parameters(world: World, data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from([r for r in world.routes if r[0] == "GET"]))
    ids = {"logical_id": data.draw(st.sampled_from(world.ids)), "version_id": "1"}
    role = _role(data, template)
    query = data.draw(params)
    sent = (*(k for k in query if k not in PARAM_NAMES), *query.values())
    await _call(world, role, method, _url(template, ids), sent, params=query)


@LENIENT
@given(data=st.data())
async def test_never_500_for_generated_post_searches(world: World, data: st.DataObject) -> None:
    """``POST [type]/_search`` with generated form bodies, strict or lenient (FHIR R4
    http.html#search, search.html#errors)."""
    resource_type = data.draw(
        st.sampled_from(
            ["MedicationRequest", "MedicationDispense", "Consent", "Claim", "AuditEvent"]
        )
    )
    role = data.draw(st.sampled_from(ROLES))
    form = data.draw(params)
    handling = data.draw(st.sampled_from(["handling=lenient", "handling=strict", "return=minimal"]))
    sent = (*(k for k in form if k not in PARAM_NAMES), *form.values())
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Prefer": handling}
    await _call(
        world, role, "POST", f"/fhir/{resource_type}/_search", sent, data=form, headers=headers
    )


@LENIENT
@given(data=st.data())
async def test_never_500_for_generated_ids(world: World, data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from([r for r in world.routes if _PARAM.search(r[1])]))
    ids = {
        name: data.draw(st.one_of(st.sampled_from(world.ids), texts))
        for name in _PARAM.findall(template)
    }
    role = _role(data, template)
    body = data.draw(bodies(_body_kind(template))) if method in ("POST", "PUT") else None
    headers = {"content-type": "application/fhir+json"} if body is not None else {}
    url = _url(template, ids)
    await _call(world, role, method, url, tuple(ids.values()), content=body, headers=headers)


@LENIENT
@given(data=st.data())
async def test_never_500_for_generated_bodies(world: World, data: st.DataObject) -> None:
    method, template = data.draw(
        st.sampled_from([r for r in world.routes if r[0] in ("POST", "PUT")])
    )
    ids = {name: data.draw(st.sampled_from(world.ids)) for name in _PARAM.findall(template)}
    if "operation" in ids:
        ids["operation"] = data.draw(
            st.sampled_from(
                [
                    "$revoke",
                    "$take-in-process",
                    "$release",
                    "$reserve",
                    "$archive",
                    "$delete-by-patient",
                ]
            )
        )
    role = _role(data, template)
    content_type = data.draw(
        st.sampled_from(
            ["application/fhir+json", "application/fhir+json", "application/json", "text/plain"]
        )
    )
    body = data.draw(bodies(_body_kind(template)))
    await _call(
        world,
        role,
        method,
        _url(template, ids),
        content=body,
        headers={"content-type": content_type},
    )


# The cases that once gave a 500, always run (the hypothesis runs may or may not draw them).
KNOWN: list[tuple[str, str, str, dict[str, Any]]] = [
    ("prescriber", "GET", "/fhir/MedicationRequest", {"params": {"_count": "²"}}),
    ("prescriber", "GET", "/fhir/MedicationRequest", {"params": {"authoredon": "9999-12-31"}}),
    ("prescriber", "GET", "/fhir/MedicationRequest", {"params": {"authoredon": "le0001-01-01"}}),
    ("admin", "GET", "/fhir/AuditEvent", {"params": {"date": "9999-12-31"}}),
    ("prescriber", "GET", "/fhir/MedicationRequest/{id}/_history/9223372036854775808", {}),
    ("prescriber", "GET", "/fhir/Consent/{id}/_history/²", {}),
    ("prescriber", "GET", "/fhir/Claim/%00", {}),  # PostgreSQL refuses NUL in text
    ("pharmacist", "GET", "/fhir/MedicationDispense", {"params": {"prescription": "\x00"}}),
    # A cursor whose id holds a NUL: base64 of "2026-01-01T00:00:00+00:00|\x00".
    (
        "prescriber",
        "GET",
        "/fhir/MedicationRequest",
        {"params": {"patient:identifier": SSIN, "_cursor": "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwA"}},
    ),
]


@pytest.mark.parametrize(("role", "method", "path", "kwargs"), KNOWN)
async def test_never_500_for_inputs_that_once_gave_one(
    world: World, role: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    await _call(world, role, method, path.replace("{id}", world.ids[0]), **kwargs)


@pytest.mark.parametrize(
    "authored",
    ["9999-12-31T23:00:00+14:00", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"],
)
async def test_never_500_for_an_authored_on_that_overflows(world: World, authored: str) -> None:
    body = orjson.dumps(medication_request(authoredOn=authored))
    await _call(
        world,
        "prescriber",
        "POST",
        "/fhir/MedicationRequest",
        content=body,
        headers=FHIR_JSON,
    )
