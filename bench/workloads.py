"""The requests of each scenario of bench/suite.py, for each kind of target.

A scenario's ``Workload`` is what the load generator sends to one target: the path (empty for
GETs, whose "bodies" are then paths with their query), the bodies, the headers and the status every
answer must have. The gateway's data are created over its own HTTP API by the benchmark's
prescriber (real bearer tokens); the floor endpoint's through its own create; the bare endpoint
needs none. All three get the same kind of request: the same bodies, or paths of the same shape.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from bench import harness
from bench.claims import FUNDS, claim_body, ssins
from bench.create_prescriptions import prescription_bodies, request_headers
from bench.pharmacy import DISPENSE_PATH, RX_PATH, dispense_body, fetch_paths, rid_of

CLAIM_PATH = "/fhir/Claim"
SSIN_SYSTEM = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
SEARCHED_PATIENT_PRESCRIPTIONS = 10  # the search: one patient, 10 prescriptions, one page
OTHER_PATIENTS = 20  # with 5 prescriptions each, so the search finds its rows among others


@dataclass
class Workload:
    path: str  # "" for GETs
    bodies: list[str]
    headers: dict[str, str]
    expect: int
    check: Callable[[bytes], str | None] = field(default=lambda _answer: None)
    # Bodies of the open loop when they must differ from the closed loop's (claims: a body sent
    # twice is a replay, not a new claim).
    open_bodies: list[str] | None = None

    def bodies_for(self, mode: str) -> list[str]:
        return self.open_bodies if mode == "open" and self.open_bodies else self.bodies


@dataclass
class GatewayClients:
    """How the benchmark reaches one running gateway: its server and the registered clients."""

    server: harness.Server
    prescriber: Any
    pharmacist: Any
    token: Callable[[Any], str]  # a fresh bearer token of a client (valid 10 minutes)

    def auth(self, client: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client)}"}


def post_json(base: str, path: str, headers: dict[str, str], body: str) -> Any:
    request = urllib.request.Request(
        base + path, data=body.encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read())


def create_many(base: str, path: str, headers: dict[str, str], bodies: list[str]) -> list[Any]:
    """POST every body (8 threads); the answers, in order."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda body: post_json(base, path, headers, body), bodies))


def _prescriptions(count: int, subject: str | None = None) -> list[str]:
    templates = [orjson.loads(body) for body in prescription_bodies()]
    out = []
    for n in range(count):
        body = dict(templates[n % len(templates)])
        if subject is not None:
            body["subject"] = {"identifier": {"system": SSIN_SYSTEM, "value": subject}}
        out.append(orjson.dumps(body).decode())
    return out


def _floor_rid(answer: dict[str, Any]) -> str:
    return str(answer["identifier"][0]["value"])


def _total_is(expected: int) -> Callable[[bytes], str | None]:
    def check(answer: bytes) -> str | None:
        total = orjson.loads(answer).get("total")
        return None if total == expected else f"expected total {expected}, got {total}"

    return check


# -- the scenarios -----------------------------------------------------------------------------


def create(kind: str, base: str, gateway: GatewayClients | None, opts: Any) -> Workload:
    """POST /fhir/MedicationRequest with the demo prescriptions."""
    auth = gateway.auth(gateway.prescriber) if gateway else {}
    return Workload(RX_PATH, prescription_bodies(), request_headers(auth), 201)


def fetch(kind: str, base: str, gateway: GatewayClients | None, opts: Any) -> Workload:
    """A pharmacist's GET /fhir/MedicationRequest?identifier=<RID> of open prescriptions."""
    bodies = _prescriptions(opts.fetch_prescriptions)
    if gateway is not None:
        made = create_many(base, RX_PATH, request_headers(gateway.auth(gateway.prescriber)), bodies)
        rids = [rid_of(resource) for resource in made]
        auth = gateway.auth(gateway.pharmacist)
    elif kind == "floor":
        rids = [_floor_rid(a) for a in create_many(base, RX_PATH, request_headers({}), bodies)]
        auth = {}
    else:
        rids, auth = [f"bare-{n}" for n in range(len(bodies))], {}
    headers = {"Accept": "application/fhir+json", **auth}
    return Workload("", fetch_paths(rids), headers, 200, _total_is(1) if kind != "bare" else _none)


def search(kind: str, base: str, gateway: GatewayClients | None, opts: Any) -> Workload:
    """The author's GET /fhir/MedicationRequest?patient:identifier=<SSIN> of a patient with 10
    prescriptions (one page), after the access decision (permit-author)."""
    people = ssins(OTHER_PATIENTS + 1, first=datetime(1961, 3, 1).date())
    searched, others = people[0], people[1:]
    bodies = _prescriptions(SEARCHED_PATIENT_PRESCRIPTIONS, searched)
    for other in others:
        bodies += _prescriptions(5, other)
    auth = gateway.auth(gateway.prescriber) if gateway else {}
    if kind != "bare":
        create_many(base, RX_PATH, request_headers(auth), bodies)
    query = urllib.parse.urlencode({"patient:identifier": f"{SSIN_SYSTEM}|{searched}"})
    headers = {"Accept": "application/fhir+json", **auth}
    check = _none if kind == "bare" else _total_is(SEARCHED_PATIENT_PRESCRIPTIONS)
    return Workload("", [f"{RX_PATH}?{query}"], headers, 200, check)


def dispense(kind: str, base: str, gateway: GatewayClients | None, opts: Any) -> Workload:
    """A pharmacist's POST /fhir/MedicationDispense, each of its own open prescription (a second
    dispense of one is 409): ``--dispense-budget`` per second of run, with half again as margin."""
    count = int(opts.dispense_budget * (opts.warmup + opts.duration) * 1.5) + 2
    handed_over = datetime.now(UTC).isoformat(timespec="seconds")
    if gateway is not None:
        made = create_many(
            base,
            RX_PATH,
            request_headers(gateway.auth(gateway.prescriber)),
            _prescriptions(count),
        )
        bodies = [dispense_body(rid_of(resource), handed_over) for resource in made]
        auth = gateway.auth(gateway.pharmacist)
    else:
        bodies = [dispense_body(f"bare-{n}", handed_over) for n in range(count)]
        auth = {}
    return Workload(DISPENSE_PATH, bodies, request_headers(auth), 201)


def claims(kind: str, base: str, gateway: GatewayClients | None, opts: Any) -> Workload:
    """A GP's POST /fhir/Claim (202 from the gateway: stored, delivered later), each its own
    patient and request key (so none is a replay); the patients are the mock funds' members.
    The closed loop gets ``--claims-budget`` per second of run with half again as margin, the
    open loop its own bodies."""
    people = claim_patients(opts)
    closed_n = int(opts.claims_budget * (opts.warmup + opts.duration) * 1.5)
    today = datetime.now(UTC).date().isoformat()
    phase = f"{kind}-{datetime.now(UTC):%H%M%S%f}"
    bodies = [claim_body(n, ssin, FUNDS[n % 2], today, phase) for n, ssin in enumerate(people)]
    auth = gateway.auth(gateway.prescriber) if gateway else {}
    return Workload(
        CLAIM_PATH,
        bodies[:closed_n],
        request_headers(auth),
        202 if gateway else 201,
        open_bodies=bodies[closed_n:],
    )


def claim_patients(opts: Any) -> list[str]:
    """Enough distinct members for the closed loop at ``--claims-budget``/s and the open loop."""
    seconds = opts.warmup + opts.duration
    return ssins(int(opts.claims_budget * seconds * 1.5 + opts.claims_rate * seconds) + 10)


def _none(_answer: bytes) -> str | None:
    return None


BUILDERS: dict[str, Callable[[str, str, GatewayClients | None, Any], Workload]] = {
    "create": create,
    "fetch": fetch,
    "search": search,
    "dispense": dispense,
    "claims": claims,
}
