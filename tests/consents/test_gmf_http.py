"""The GMF choice (issue 16 item 5; domain RX-14) over HTTP, with the practices kept by the operator's
CLI (``gateway gmf ...``): a prescription the patient shows to the GMF is read by the GPs sharing a
GMF practice with its author, or with the patient's GMF holder; a physician outside who searches is
told that hidden prescriptions exist, without their content, and that is audited; a GP removed from
the practice no longer sees it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fhir_profiles import systems
from gateway.cli import main
from tests.consents.factories import (
    RX_URL,
    SSIN,
    audit_rows,
    created,
    informed_consent,
    patient_hash,
    prescription,
    reason_of,
    relationship,
)
from tests.consents.test_visibility_http import choice, set_visibility
from tests.fixtures.app import ClientFactory
from tests.fixtures.auth import OTHER_PRESCRIBER_NIHDI, PRESCRIBER_NIHDI
from tests.fixtures.nihdi import nihdi

BY_PATIENT = {"patient:identifier": f"{systems.SSIN}|{SSIN}"}
PRACTICE = "gmf-claes-lambert"
OUTSIDER = nihdi("100123", "004")  # a physician of no practice of theirs
HOLDER = nihdi("100456", "003")  # the GP who holds the patient's GMF in another practice


async def gmf(*args: str) -> int:
    """``gateway gmf ...`` as the operator types it."""
    return await asyncio.to_thread(main, ["gmf", *args])


@pytest.fixture
async def outsider(client_for: ClientFactory) -> httpx.AsyncClient:
    return await client_for("prescriber", nihdi=OUTSIDER)


@pytest.fixture
async def practice(gateway_env: None) -> None:
    """The author and his colleague share a GMF practice."""
    assert await gmf("add-practice", PRACTICE, "--name", "Groepspraktijk Claes-Lambert") == 0
    assert await gmf("add-member", PRACTICE, PRESCRIBER_NIHDI) == 0
    assert await gmf("add-member", PRACTICE, OTHER_PRESCRIBER_NIHDI) == 0


async def search(client: httpx.AsyncClient) -> tuple[set[str], list[dict[str, Any]]]:
    """The ids a search by patient matched, and the OperationOutcome entries it told."""
    response = await client.get(RX_URL, params=BY_PATIENT)
    assert response.status_code == 200, response.text
    entries = response.json().get("entry", [])
    matched = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}
    told = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    assert response.json()["total"] == len(matched)
    return matched, told


def hidden_count(told: list[dict[str, Any]]) -> int:
    """The number RX-14 tells, from the issue coded RX-14 (none told: 0)."""
    issues = [i for o in told for i in o["issue"] if i.get("details", {}).get("text") == "RX-14"]
    if not issues:
        return 0
    [issue] = issues
    assert (issue["severity"], issue["code"]) == ("information", "suppressed")
    return int(issue["diagnostics"].split()[0])


async def test_RX_14_the_practice_sees_it_an_outsider_is_told_it_exists(
    app: FastAPI,
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    outsider: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    practice: None,
) -> None:
    gmf_only = await prescription(author)
    open_one = await prescription(author)
    await created(patient, informed_consent(proof=False))
    for physician, number in ((colleague, OTHER_PRESCRIBER_NIHDI), (outsider, OUTSIDER)):
        await created(physician, relationship(number))
    response = await set_visibility(patient, gmf_only["id"], choice(prescribers="gmf"))
    assert response.status_code == 200, response.text
    parts = {p["url"]: p for p in response.json()["extension"][0]["extension"]}
    assert parts["prescribers"]["valueCode"] == "gmf"

    # A GP of the author's practice, with consent and his relationship, reads and finds it.
    assert (await colleague.get(f"{RX_URL}/{gmf_only['id']}")).status_code == 200
    assert await search(colleague) == ({gmf_only["id"], open_one["id"]}, [])

    # Outside the practice: refused, absent from the search and its total, told it exists.
    assert reason_of(await outsider.get(f"{RX_URL}/{gmf_only['id']}")) == "hidden-by-patient"
    matched, told = await search(outsider)
    assert matched == {open_one["id"]}
    assert hidden_count(told) == 1
    assert gmf_only["id"] not in json.dumps(told)  # no id, no content
    assert gmf_only["medicationCodeableConcept"]["coding"][0]["code"] not in json.dumps(told)
    # ... and that he was kept from it is in the patient's trail, after the search itself.
    *_, searched, kept = await audit_rows(app)
    assert (searched.action, searched.outcome, searched.reason) == (
        "search",
        "permit",
        "permit-relationship",
    )
    assert (kept.action, kept.outcome, kept.reason, kept.actor_nihdi) == (
        "search",
        "deny",
        "hidden-by-patient",
        OUTSIDER,
    )
    assert kept.patient_hmac == patient_hash(app)
    assert kept.resource_id is None

    # The author reads his own whatever the choice, and is told nothing.
    assert await search(author) == ({gmf_only["id"], open_one["id"]}, [])


async def test_RX_14_a_GP_removed_from_the_practice_no_longer_sees_it(
    author: httpx.AsyncClient,
    colleague: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    practice: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gmf_only = await prescription(author)
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    await set_visibility(patient, gmf_only["id"], choice(prescribers="gmf"))
    assert (await colleague.get(f"{RX_URL}/{gmf_only['id']}")).status_code == 200

    assert await gmf("remove-member", PRACTICE, OTHER_PRESCRIBER_NIHDI) == 0
    assert reason_of(await colleague.get(f"{RX_URL}/{gmf_only['id']}")) == "hidden-by-patient"
    matched, told = await search(colleague)
    assert (matched, hidden_count(told)) == (set(), 1)
    # Removed once: a second removal is an error; the list keeps the history with --all.
    assert await gmf("remove-member", PRACTICE, OTHER_PRESCRIBER_NIHDI) == 2
    capsys.readouterr()
    assert await gmf("list", "--json") == 0
    current = json.loads(capsys.readouterr().out)
    assert [(r["practice_id"], r["nihdi"]) for r in current] == [(PRACTICE, PRESCRIBER_NIHDI)]
    assert await gmf("list", "--all", "--json") == 0
    history = {r["nihdi"]: r for r in json.loads(capsys.readouterr().out)}
    assert history[OTHER_PRESCRIBER_NIHDI]["until"] is not None
    assert history[OTHER_PRESCRIBER_NIHDI]["current"] is False

    # Back in the practice, he sees it again.
    assert await gmf("add-member", PRACTICE, OTHER_PRESCRIBER_NIHDI) == 0
    assert (await colleague.get(f"{RX_URL}/{gmf_only['id']}")).status_code == 200


async def test_RX_14_the_patients_GMF_holder_and_his_practice_see_it(
    author: httpx.AsyncClient,
    outsider: httpx.AsyncClient,
    patient: httpx.AsyncClient,
    client_for: ClientFactory,
    practice: None,
) -> None:
    holder = await client_for("prescriber", nihdi=HOLDER)
    gmf_only = await prescription(author)
    await created(patient, informed_consent(proof=False))
    await created(holder, relationship(HOLDER, kind="gmf"))
    await created(outsider, relationship(OUTSIDER))
    await set_visibility(patient, gmf_only["id"], choice(prescribers="gmf"))

    # The holder is in no practice with the author: holding the GMF is enough.
    assert (await holder.get(f"{RX_URL}/{gmf_only['id']}")).status_code == 200
    assert reason_of(await outsider.get(f"{RX_URL}/{gmf_only['id']}")) == "hidden-by-patient"
    # The outsider joins the holder's practice: now a colleague of the GMF holder.
    assert await gmf("add-practice", "gmf-holder", "--name", "Maison medicale") == 0
    for member in (HOLDER, OUTSIDER):
        assert await gmf("add-member", "gmf-holder", member) == 0
    assert (await outsider.get(f"{RX_URL}/{gmf_only['id']}")).status_code == 200
    assert await search(outsider) == ({gmf_only["id"]}, [])


async def test_RX_14_closed_ones_are_told_too_and_paging_counts_only_what_is_seen(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = [await prescription(author) for _ in range(4)]
    await created(patient, informed_consent(proof=False))
    await created(colleague, relationship(OTHER_PRESCRIBER_NIHDI))
    await set_visibility(patient, written[0]["id"], choice(prescribers="closed"))
    await set_visibility(patient, written[1]["id"], choice(prescribers="gmf"))  # no practice
    response = await colleague.get(RX_URL, params={**BY_PATIENT, "_count": "1"})
    pages = 0
    while True:
        pages += 1
        bundle = response.json()
        assert bundle["total"] == 2
        assert (
            hidden_count(
                [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
            )
            == 2
        )
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        response = await colleague.get(following[0])
    assert pages == 2
    # A search for what is no longer open tells nothing: others' closed ones are out anyway.
    done = await colleague.get(RX_URL, params={**BY_PATIENT, "status": "completed"})
    assert done.json()["total"] == 0
    assert "entry" not in done.json()


async def test_RX_14_gmf_is_a_choice_of_the_patient_and_of_the_author(
    author: httpx.AsyncClient, colleague: httpx.AsyncClient, patient: httpx.AsyncClient
) -> None:
    written = await prescription(author)
    assert (
        await set_visibility(author, written["id"], choice(prescribers="gmf"))
    ).status_code == 200
    assert reason_of(await set_visibility(colleague, written["id"], choice(prescribers="gmf"))) == (
        "not-author"
    )
    refused = await set_visibility(patient, written["id"], choice(prescribers="colleagues"))
    assert refused.status_code == 400
    issue = refused.json()["issue"][0]
    assert "open | closed | gmf" in issue["diagnostics"]
    assert issue["expression"] == ["Parameters.parameter"]


async def test_the_gmf_commands_refuse_what_they_cannot_do(
    gateway_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await gmf("add-member", "nowhere", PRESCRIBER_NIHDI) == 2  # no such practice
    assert "no practice" in capsys.readouterr().err
    assert await gmf("add-practice", "p1", "--name", "Practice one") == 0
    assert await gmf("add-practice", "p1", "--name", "Practice one") == 0  # already known
    assert "already known" in capsys.readouterr().out
    dentist, bad_check = nihdi("300123", "001"), "19234012004"
    for number in (dentist, bad_check, "1923401", "06012345"):
        assert await gmf("add-member", "p1", number) == 2, number
    assert await gmf("add-member", "p1", PRESCRIBER_NIHDI, "--since", "yesterday") == 2
    assert await gmf("add-member", "p1", PRESCRIBER_NIHDI, "--since", "2026-01-01T10:00") == 2
    capsys.readouterr()
    assert await gmf("add-member", "p1", PRESCRIBER_NIHDI, "--since", "2026-01-01") == 0
    assert "2026-01-01T00:00:00+01:00" in capsys.readouterr().out  # a Brussels day
    assert await gmf("add-member", "p1", PRESCRIBER_NIHDI[:8]) == 2  # the same person already
    assert await gmf("remove-member", "p1", OTHER_PRESCRIBER_NIHDI) == 2  # not a member
    capsys.readouterr()
    assert await gmf("list") == 0
    table = capsys.readouterr().out
    assert "p1" in table
    assert PRESCRIBER_NIHDI in table
