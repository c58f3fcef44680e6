"""``consent.decide`` on feedback (domain RX-8): who sends, who reads, the author's flag."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from consent import (
    ACCESS_MATRIX,
    Action,
    ByRid,
    PrescriptionState,
    Reason,
    Resource,
    ResourceKind,
    Role,
    decide,
)
from tests.consent.factories import (
    AUTHOR,
    OTHER_PHARMACY,
    PHARMACY,
    RID,
    admin,
    author,
    deny,
    facts,
    patient,
    permit,
    pharmacist,
    prescriber,
    prescription,
    presence,
    request,
)
from tests.fixtures.nihdi import nihdi

R = Reason
S = PrescriptionState


def feedback(**about: Any) -> Resource:
    """Feedback from ``PHARMACY`` to ``AUTHOR`` about an open prescription."""
    return Resource(
        ResourceKind.FEEDBACK,
        id="fb-1",
        patient_ssin=prescription().patient_ssin,
        author_nihdi=PHARMACY,
        provider_nihdi=AUTHOR,
        about=prescription(**about),
    )


def test_RX_8_no_patient_row_in_the_matrix() -> None:
    # [A] Recip-e shows feedback to neither the patient nor the portal.
    assert ResourceKind.FEEDBACK not in ACCESS_MATRIX[Role.PATIENT]
    for action in (Action.READ, Action.SEARCH, Action.CREATE):
        target = ResourceKind.FEEDBACK if action is Action.SEARCH else feedback()
        assert decide(request(patient(), target, action), facts()) == deny(R.WRONG_ROLE)
    assert decide(request(admin(), feedback()), facts()) == deny(R.WRONG_ROLE)


def test_RX_8_sending_is_decided_as_a_read_of_the_prescription() -> None:
    send = Action.CREATE
    assert decide(request(pharmacist(), feedback(), send, path=ByRid(RID)), facts()) == permit(
        R.PERMIT_RID
    )
    # Without the RID: the network rules, with the eID read standing for a relationship.
    assert decide(request(pharmacist(), feedback(), send), facts()) == deny(R.NO_RELATIONSHIP)
    assert decide(request(pharmacist(), feedback(), send, path=presence()), facts()) == permit(
        R.PERMIT_PRESENCE
    )
    assert decide(request(pharmacist(), feedback(), send), facts(consent=False)) == deny(
        R.NO_CONSENT
    )
    # The pharmacy's own acts: holding it in process, having delivered it.
    held = feedback(state=S.IN_PROCESS, held_by=PHARMACY)
    assert decide(request(pharmacist(), held, send), facts(consent=False)) == permit(
        R.PERMIT_DISPENSER
    )
    delivered = feedback(state=S.DELIVERED, dispensed_by=PHARMACY)
    assert decide(request(pharmacist(), delivered, send), facts(consent=False)) == permit(
        R.PERMIT_DISPENSER
    )
    elsewhere = feedback(state=S.IN_PROCESS, held_by=OTHER_PHARMACY)
    assert decide(request(pharmacist(), elsewhere, send), facts(consent=False)) == deny(
        R.NO_CONSENT
    )


def test_RX_8_a_rid_showing_only_the_state_is_not_enough() -> None:
    revoked = feedback(state=S.REVOKED)
    req = request(pharmacist(), revoked, Action.CREATE, path=ByRid(RID))
    assert decide(req, facts()) == deny(R.NOT_OPEN)


def test_RX_8_the_flag_refuses_after_the_access_rules() -> None:
    refused = feedback(accepts_feedback=False)
    by_rid = request(pharmacist(), refused, Action.CREATE, path=ByRid(RID))
    assert decide(by_rid, facts()) == deny(R.FEEDBACK_REFUSED)
    # Who may not read the prescription learns nothing of the flag.
    assert decide(request(pharmacist(), refused, Action.CREATE), facts()) == deny(R.NO_RELATIONSHIP)


def test_RX_8_a_pharmacy_sends_in_its_own_name_only() -> None:
    req = request(pharmacist(OTHER_PHARMACY), feedback(), Action.CREATE, path=ByRid(RID))
    assert decide(req, facts()) == deny(R.NOT_AUTHOR)


@pytest.mark.parametrize("action", [Action.READ, Action.SEARCH])
def test_RX_8_each_reads_his_own_correspondence(action: Action) -> None:
    record = feedback()
    assert decide(request(pharmacist(), record, action), facts()) == permit(R.PERMIT_AUTHOR)
    assert decide(request(author(), record, action), facts()) == permit(R.PERMIT_AUTHOR)
    # ID-7: the author under another competence code.
    specialist = prescriber(nihdi(AUTHOR[:6], "580"))
    assert decide(request(specialist, record, action), facts()) == permit(R.PERMIT_AUTHOR)
    for stranger in (pharmacist(OTHER_PHARMACY), prescriber()):
        assert decide(request(stranger, record, action), facts()) == deny(R.NOT_AUTHOR)


def test_RX_8_a_search_is_the_callers_own_feedback() -> None:
    for caller in (pharmacist(), prescriber()):
        req = request(caller, ResourceKind.FEEDBACK, Action.SEARCH)
        assert decide(req, facts(consent=False)) == permit(R.PERMIT_AUTHOR)


def test_RX_8_only_the_author_sets_the_flag() -> None:
    flag = Action.SET_FEEDBACK
    assert decide(request(author(), prescription(), flag), facts()) == permit(R.PERMIT_AUTHOR)
    colleague = request(prescriber(), prescription(), flag)
    assert decide(colleague, facts(related=(prescriber().nihdi or "",))) == deny(R.NOT_AUTHOR)
    for caller in (pharmacist(), patient()):
        assert decide(request(caller, prescription(), flag), facts()) == deny(R.WRONG_ROLE)


def test_RX_8_feedback_about_something_else_fails_closed() -> None:
    odd = replace(feedback(), about=None)
    req = request(pharmacist(), odd, Action.CREATE, path=ByRid(RID))
    assert decide(req, facts()) == deny(R.ERROR)
