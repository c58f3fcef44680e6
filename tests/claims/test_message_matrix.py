"""One claim content, two doors: ``POST /fhir/Claim`` and ``POST /fhir/$process-message``.

Each case is a claim's content (the REST shape); the message path wraps it in the guide's request
message (``tests.claims.message_factories``). Both must agree: accepted and queued, or refused
with the same rules at the same elements (AT-3, ID-*, the guide's invariants). The message path
answers at once here (``message_wait_seconds`` 0: a queued claim is a transient-error answer,
its delivery is tested in ``test_messages``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fhir_profiles.rules.claim_codes import ITEM_PREAUTH, SNOMED, TRANSPLANTATION
from gateway.settings import Settings
from tests.claims.conftest import post_claim
from tests.claims.factories import ANNE, GP, OTHER_GP, claim, item
from tests.claims.message_factories import create_message, member, with_supplements

RULE = "urn:ehealth-gateway:rule"
TRAINEE = "18123411005"  # a GP in training (an NIHDI number with valid check digits)
HYGIENIST = "31234546002"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"message_wait_seconds": 0.0})


def team(*members: dict[str, Any]) -> list[dict[str, Any]]:
    """The provider (primary, last) and the others, numbered in order."""
    chosen = [*members, member(GP, "primary")]
    return [{**m, "sequence": i + 1} for i, m in enumerate(chosen)]


def content(kind: str = "generalpractice", **overrides: Any) -> dict[str, Any]:
    """A claim with its care team and supplements, the same through both doors."""
    body = with_supplements(claim(attestation_type=kind, **overrides))
    body["careTeam"] = team()
    for entry in body["item"]:
        entry["careTeamSequence"] = [len(body["careTeam"])]
    return body


def change(body: dict[str, Any], fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    fn(copied)
    return copied


def _with_team(*members: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        body["careTeam"] = team(*members)
        for entry in body["item"]:
            entry["careTeamSequence"] = [len(body["careTeam"])]

    return apply


def _on_item(**element: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        body["item"][0].update(copy.deepcopy(element))

    return apply


def _preauth(body: dict[str, Any]) -> None:
    body["item"][0]["extension"].append({"url": ITEM_PREAUTH, "valueString": "DEC-2025-0001"})


def _transplantation(body: dict[str, Any]) -> None:
    code = {"coding": [{"system": TRANSPLANTATION, "code": "1"}]}
    body["supportingInfo"] = [{"sequence": 1, "category": {"text": "info"}, "code": code}]


def _supplement_sum_off(body: dict[str, Any]) -> None:
    body["extension"][0]["valueMoney"]["value"] = 5.0


def _net_off(body: dict[str, Any]) -> None:
    body["item"][0]["net"]["value"] = 99.0


def _bad_ssin(body: dict[str, Any]) -> None:
    body["patient"]["identifier"]["value"] = "85073003329"


TOOTH_11 = {"coding": [{"system": SNOMED, "code": "422653006"}]}
NOT_A_TOOTH = {"coding": [{"system": SNOMED, "code": "80891009"}]}  # the heart

CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "a GP's consultation": (content(), set()),
    "a supplement charged": (with_supplements(claim(attestation_type="generalpractice"), 2.5), set()),
    "a GMF holder in a GP's attestation": (
        change(content(), _with_team(member(OTHER_GP, "other"))),
        set(),
    ),
    "a trainee in a GP's attestation": (
        change(content(), _with_team(member(TRAINEE, "assist"))),
        set(),
    ),
    "a GMF holder in specialised medicine": (
        change(content("specializedmedicine"), _with_team(member(OTHER_GP, "other"))),
        {"be-inv-gmf-holder"},
    ),
    "a trainee in dentistry": (
        change(content("dentistry"), _with_team(member(TRAINEE, "assist"))),
        {"be-inv-trainee"},
    ),
    "an oral hygienist in dentistry": (
        change(content("dentistry"), _with_team(member(HYGIENIST, "assist", "persoraldentalhygienist"))),
        set(),
    ),
    "an oral hygienist in general practice": (
        change(content(), _with_team(member(HYGIENIST, "assist", "persoraldentalhygienist"))),
        {"be-inv-oral-hygienist"},
    ),
    "a tooth in dentistry": (change(content("dentistry"), _on_item(bodySite=TOOTH_11)), set()),
    "a body site that is no tooth in dentistry": (
        change(content("dentistry"), _on_item(bodySite=NOT_A_TOOTH)),
        {"be-inv-toothNumber"},
    ),
    "a body site in general practice": (
        change(content(), _on_item(bodySite=TOOTH_11)),
        {"be-inv-bodySite"},
    ),
    "a decision number in general practice": (
        change(content(), _preauth),
        {"be-inv-medical-advisor-decision-nr"},
    ),
    "physiotherapy without decision number nor prescription": (
        content("physiotherapy"),
        {"be-inv-medical-advisor-decision-nr", "AT-3"},
    ),
    "a transplantation in general practice": (
        change(content(), _transplantation),
        {"be-inv-transplantation"},
    ),
    "supplements that do not add up": (change(content(), _supplement_sum_off), {"AT-3"}),
    "a fee that is not price times count": (change(content(), _net_off), {"AT-3"}),
    "an SSIN with wrong check digits": (change(content(), _bad_ssin), {"ID-2"}),
    "a preferential member's two services": (
        content(patient=ANNE, items=[item("101032"), item("101076", price=25.5)]),
        set(),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    rules: frozenset[str]
    expressions: tuple[str, ...]


def _issues(outcome: dict[str, Any]) -> tuple[frozenset[str], tuple[str, ...]]:
    rules, expressions = set(), []
    for issue in outcome.get("issue", []):
        for coding in issue.get("details", {}).get("coding", []):
            if coding["system"] == RULE:
                rules.add(coding["code"])
        expressions.extend(issue.get("expression", []))
    return frozenset(rules), tuple(expressions)


async def through_rest(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> Outcome:
    response = await post_claim(client, body, key=key)
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        return Outcome(True, frozenset(), ())
    return Outcome(False, *_issues(response.json()))


async def through_message(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> Outcome:
    message = create_message(body, bundle_id=key)
    response = await client.post(
        "/fhir/$process-message", json=message, headers={"content-type": "application/fhir+json"}
    )
    assert response.status_code in (503, 422), response.text
    answer = response.json()
    assert answer["resourceType"] == "Bundle"
    assert answer["type"] == "message"
    header = answer["entry"][0]["resource"]
    assert header["response"]["identifier"] == message["entry"][0]["resource"]["id"]
    if response.status_code == 503:
        assert header["response"]["code"] == "transient-error"
        return Outcome(True, frozenset(), ())
    assert header["response"]["code"] == "fatal-error"
    assert header["eventCoding"]["code"] == "reject"
    [outcome] = [
        e["resource"]
        for e in answer["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    return Outcome(False, *_issues(outcome))


PATHS = {"rest": through_rest, "message": through_message}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("case", sorted(CASES))
async def test_both_doors_agree(provider: httpx.AsyncClient, path: str, case: str) -> None:
    body, refused_for = CASES[case]
    outcome = await PATHS[path](provider, body, f"matrix-{abs(hash(case))}")
    assert outcome.accepted is (not refused_for), outcome
    assert outcome.rules == frozenset(refused_for)
    for expression in outcome.expressions:
        # The element at fault: in the Claim (REST) or in the message's entry that holds it.
        assert expression.startswith("Claim" if path == "rest" else "Bundle.entry["), expression


def _comparable(stored: dict[str, Any]) -> dict[str, Any]:
    """What the claim says, apart from what only a message carries (its entries, the enterer,
    references to them) and the record's own id, version and request key."""
    body = {
        k: v
        for k, v in stored.items()
        if k not in ("id", "meta", "contained", "enterer", "identifier", "created")
    }
    for element in ("patient", "provider", "insurer"):
        body[element] = {"identifier": body[element]["identifier"]}
    return body


async def test_both_doors_store_the_same_claim(provider: httpx.AsyncClient) -> None:
    body = change(content(), _with_team(member(OTHER_GP, "other")))
    rest = await post_claim(provider, body, key="same-1")
    assert rest.status_code == 202, rest.text
    message = create_message(
        change(body, lambda b: b["item"][0].update(sequence=1)), bundle_id="same-2"
    )
    # The same service again within 24 h: the message must say it is deliberate (AT-7).
    message["entry"][-1]["resource"].setdefault("extension", []).append(
        {"url": "urn:ehealth-gateway:extension:duplicate-override", "valueBoolean": True}
    )
    answer = await provider.post(
        "/fhir/$process-message", json=message, headers={"content-type": "application/fhir+json"}
    )
    assert answer.status_code == 503, answer.text
    listed = (await provider.get("/fhir/Claim")).json()["entry"]
    by_key = {
        next(
            i["value"]
            for i in e["resource"]["identifier"]
            if i["system"].startswith("urn:ehealth-gateway:request-key")
        ): e["resource"]
        for e in listed
    }
    from_message = _comparable(by_key["same-2"])
    from_message["extension"] = [
        e for e in from_message["extension"] if "duplicate-override" not in e["url"]
    ]
    assert from_message == _comparable(by_key["same-1"])
    assert by_key["same-2"]["enterer"]["identifier"]["value"] == GP
