"""``consent.decide``: roles, the patient, the operator, the order of CO-12, failing closed."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from consent import (
    ACCESS_MATRIX,
    AccessPath,
    AccessRequest,
    Action,
    Actor,
    ByPresence,
    ByRelationship,
    ByRid,
    Decision,
    PatientFacts,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    ResourceKind,
    Role,
    Visibility,
    decide,
)
from tests.consent.factories import (
    AUTHOR,
    CARD,
    NOW,
    OTHER_SSIN,
    PHARMACY,
    PRESCRIBER,
    RID,
    admin,
    author,
    deny,
    facts,
    fund,
    patient,
    permit,
    pharmacist,
    prescriber,
    prescription,
    presence,
    record,
    relationship,
    request,
    visibility,
)

R = Reason
S = PrescriptionState


# --- CO-12.1: the role --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "action"), list(itertools.product(ResourceKind, Action)), ids=str)
def test_CO_12_1_fund_has_no_access(kind: ResourceKind, action: Action) -> None:
    target = record(kind, state=S.OPEN)
    assert decide(request(fund(), target, action, new_visibility=visibility()), facts()) == deny(
        R.WRONG_ROLE
    )


def test_CO_12_1_unknown_role_is_wrong_role() -> None:
    intruder = replace(prescriber(), role="occupational-physician")
    assert decide(request(intruder, prescription()), facts(related=(PRESCRIBER,))) == deny(
        R.WRONG_ROLE
    )


def test_CO_12_1_role_given_as_plain_string_is_understood() -> None:
    plain = replace(author(), role="prescriber")
    assert decide(request(plain, prescription()), facts()) == permit(R.PERMIT_AUTHOR)


@pytest.mark.parametrize("nihdi", [None, ""])
def test_RX_18_provider_without_nihdi_is_wrong_role(nihdi: str | None) -> None:
    assert decide(request(pharmacist(nihdi), prescription(), path=ByRid(RID)), facts()) == deny(
        R.WRONG_ROLE
    )


@pytest.mark.parametrize("action", [Action.CREATE, Action.REVOKE, Action.SET_VISIBILITY])
def test_CO_12_1_pharmacist_cannot_write_prescriptions(action: Action) -> None:
    req = request(
        pharmacist(), prescription(), action, path=ByRid(RID), new_visibility=visibility()
    )
    assert decide(req, facts()) == deny(R.WRONG_ROLE)


@pytest.mark.parametrize("action", [Action.DISPENSE, Action.UPDATE])
def test_CO_12_1_prescriber_cannot_dispense_or_change_content(action: Action) -> None:
    # RX-7: a prescription's content never changes after creation (a correction is a new RID).
    assert decide(request(author(), prescription(), action), facts()) == deny(R.WRONG_ROLE)


@pytest.mark.parametrize("actor", [author(), pharmacist()], ids=["prescriber", "pharmacist"])
@pytest.mark.parametrize("action", [Action.READ, Action.CREATE, Action.UPDATE])
def test_CO_10_only_the_patient_manages_exclusions(actor: Actor, action: Action) -> None:
    req = request(author(), record(ResourceKind.EXCLUSION), action, path=presence())
    req = replace(req, actor=actor)
    assert decide(req, facts()) == deny(R.WRONG_ROLE)


@pytest.mark.parametrize("actor", [author(), pharmacist()], ids=["prescriber", "pharmacist"])
def test_architecture_8_providers_do_not_read_the_audit_trail(actor: Actor) -> None:
    req = replace(request(author(), record(ResourceKind.AUDIT)), actor=actor)
    assert decide(req, facts(related=(AUTHOR, PHARMACY))) == deny(R.WRONG_ROLE)


# --- the operator -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [Action.READ, Action.SEARCH])
def test_architecture_8_admin_reads_the_audit_trail(action: Action) -> None:
    target = record(ResourceKind.AUDIT) if action is Action.READ else ResourceKind.AUDIT
    assert decide(request(admin(), target, action), facts(consent=False)) == permit(R.PERMIT_ADMIN)


@pytest.mark.parametrize(
    "kind", [ResourceKind.PRESCRIPTION, ResourceKind.DISPENSE, ResourceKind.CONSENT]
)
def test_admin_reads_no_health_content(kind: ResourceKind) -> None:
    assert decide(request(admin(), record(kind, state=S.OPEN)), facts()) == deny(R.WRONG_ROLE)


def test_architecture_4_operator_reads_no_claim_or_its_answer() -> None:
    # A claim (and its ClaimResponse) says what care the patient had and what was paid: the
    # operator runs the queue with `gateway claims list|retry`, not through FHIR (docs/claims.md).
    claim = record(ResourceKind.CLAIM, author_nihdi=AUTHOR)
    for req in (
        request(admin(), claim, Action.READ),
        request(admin(), ResourceKind.CLAIM, Action.SEARCH),
        request(admin(), claim, Action.UPDATE),
    ):
        assert decide(req, facts(consent=False)) == deny(R.WRONG_ROLE)


# --- the patient (PO-4) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        (kind, action)
        for kind, actions in ACCESS_MATRIX[Role.PATIENT].items()
        for action in actions
        if action is not Action.SET_VISIBILITY
    ],
    ids=str,
)
def test_PO_4_patient_sees_and_manages_own_data(kind: ResourceKind, action: Action) -> None:
    target = kind if action is Action.SEARCH else record(kind, state=S.OPEN)
    # No consent, no relationship: the patient needs neither for their own data.
    assert decide(request(patient(), target, action), facts(consent=False)) == permit(
        R.PERMIT_PATIENT_SELF
    )


@pytest.mark.parametrize("state", list(S))
def test_PO_4_patient_sees_own_prescription_whatever_its_state_or_visibility(
    state: PrescriptionState,
) -> None:
    hidden = prescription(
        state=state,
        visibility=visibility(
            pharmacies=PharmacyVisibility.NONE, prescribers=PrescriberVisibility.CLOSED
        ),
    )
    assert decide(request(patient(), hidden), facts()) == permit(R.PERMIT_PATIENT_SELF)


@pytest.mark.parametrize("kind", list(ACCESS_MATRIX[Role.PATIENT]))
def test_PO_4_patient_asking_about_another_patient_is_not_own_data(kind: ResourceKind) -> None:
    target = record(kind, state=S.OPEN)
    assert decide(request(patient(OTHER_SSIN), target), facts()) == deny(R.NOT_OWN_DATA)


def test_PO_4_patient_without_ssin_is_not_own_data() -> None:
    assert decide(request(patient(None), prescription()), facts()) == deny(R.NOT_OWN_DATA)


@pytest.mark.parametrize(
    "choice",
    [
        visibility(pharmacies=PharmacyVisibility.ONE, pharmacy=PHARMACY),
        visibility(pharmacies=PharmacyVisibility.NONE),
        visibility(prescribers=PrescriberVisibility.CLOSED),
    ],
)
def test_RX_13_patient_sets_any_visibility(choice: Visibility) -> None:
    req = request(patient(), prescription(), Action.SET_VISIBILITY, new_visibility=choice)
    assert decide(req, facts()) == permit(R.PERMIT_PATIENT_SELF)


def test_architecture_4_patient_does_not_revoke() -> None:
    # $revoke is the author's (docs/architecture.md 4); the patient deletes instead (RX-7).
    assert decide(request(patient(), prescription(), Action.REVOKE), facts()) == deny(R.WRONG_ROLE)


@pytest.mark.parametrize("kind", [ResourceKind.PRESCRIPTION, ResourceKind.CLAIM])
def test_PO_4_patient_creates_no_prescription_or_claim(kind: ResourceKind) -> None:
    assert decide(request(patient(), record(kind), Action.CREATE), facts()) == deny(R.WRONG_ROLE)


# --- CO-12: the decision order, table-driven ----------------------------------------------------

# Each row removes one fact from a request that is otherwise permitted: its reason code.
_PRESCRIBER_BASE = request(prescriber(), prescription())
_PHARMACY_BASE = request(pharmacist(), prescription(), Action.SEARCH, path=presence())
_ALL_FACTS = facts(related=(PRESCRIBER,))

ONE_FACT_MISSING = [
    ("role", replace(_PRESCRIBER_BASE, actor=fund()), _ALL_FACTS, R.WRONG_ROLE),
    ("consent", _PRESCRIBER_BASE, facts(consent=False, related=(PRESCRIBER,)), R.NO_CONSENT),
    (
        "exclusion",
        _PRESCRIBER_BASE,
        facts(related=(PRESCRIBER,), excluded=(PRESCRIBER,)),
        R.EXCLUDED,
    ),
    ("relationship", _PRESCRIBER_BASE, facts(), R.NO_RELATIONSHIP),
    (
        "open",
        replace(_PRESCRIBER_BASE, target=prescription(state=S.DELIVERED)),
        _ALL_FACTS,
        R.NOT_OPEN,
    ),
    (
        "prescriber-visibility",
        replace(
            _PRESCRIBER_BASE,
            target=prescription(visibility=visibility(prescribers=PrescriberVisibility.CLOSED)),
        ),
        _ALL_FACTS,
        R.HIDDEN_BY_PATIENT,
    ),
    ("own-data", replace(_PRESCRIBER_BASE, actor=patient(OTHER_SSIN)), _ALL_FACTS, R.NOT_OWN_DATA),
    # RX-18: the listing at the counter needs no consent; a read by id (no RID) still does.
    (
        "pharmacy-consent",
        replace(_PHARMACY_BASE, action=Action.READ),
        facts(consent=False),
        R.NO_CONSENT,
    ),
    ("pharmacy-exclusion", _PHARMACY_BASE, facts(excluded=(PHARMACY,)), R.EXCLUDED),
    (
        "pharmacy-presence",
        replace(_PHARMACY_BASE, path=ByRelationship()),
        facts(),
        R.NO_RELATIONSHIP,
    ),
    (
        "pharmacy-open",
        replace(_PHARMACY_BASE, target=prescription(state=S.EXPIRED)),
        facts(),
        R.NOT_OPEN,
    ),
    (
        "pharmacy-visibility",
        replace(
            _PHARMACY_BASE,
            target=prescription(visibility=visibility(pharmacies=PharmacyVisibility.NONE)),
        ),
        facts(),
        R.HIDDEN_BY_PATIENT,
    ),
]


def test_CO_12_the_base_requests_are_permitted() -> None:
    assert decide(_PRESCRIBER_BASE, _ALL_FACTS) == permit(R.PERMIT_RELATIONSHIP)
    assert decide(_PHARMACY_BASE, facts()) == permit(R.PERMIT_PRESENCE)


@pytest.mark.parametrize(
    ("missing", "req", "known", "reason"),
    ONE_FACT_MISSING,
    ids=[row[0] for row in ONE_FACT_MISSING],
)
def test_CO_12_each_missing_fact_gives_its_reason(
    missing: str, req: AccessRequest, known: PatientFacts, reason: Reason
) -> None:
    assert decide(req, known) == deny(reason)


def _everything_wrong_from(step: int) -> tuple[AccessRequest, PatientFacts]:
    """The other prescriber's request with facts broken at ``step`` and every later step."""
    closed = visibility(prescribers=PrescriberVisibility.CLOSED)
    steps = ["consent", "exclusion", "relationship", "open", "visibility"]
    broken = set(steps[step:])
    known = facts(
        consent="consent" not in broken,
        related=() if "relationship" in broken else (PRESCRIBER,),
        excluded=(PRESCRIBER,) if "exclusion" in broken else (),
    )
    rx = prescription(
        state=S.REVOKED if "open" in broken else S.OPEN,
        visibility=closed if "visibility" in broken else visibility(),
    )
    return request(prescriber(), rx), known


@pytest.mark.parametrize(
    ("step", "reason"),
    list(enumerate([R.NO_CONSENT, R.EXCLUDED, R.NO_RELATIONSHIP, R.NOT_OPEN, R.HIDDEN_BY_PATIENT])),
)
def test_CO_12_earlier_rules_are_reported_first(step: int, reason: Reason) -> None:
    # With this rule and all later ones failing, this rule's reason wins: CO-12's order.
    req, known = _everything_wrong_from(step)
    assert decide(req, known) == deny(reason)


def test_CO_12_1_role_is_checked_before_everything() -> None:
    req, known = _everything_wrong_from(0)
    assert decide(replace(req, actor=fund()), known) == deny(R.WRONG_ROLE)


# --- fail closed ----------------------------------------------------------------------------------

_NAIVE = NOW.replace(tzinfo=None)
BAD = [
    ("facts-none", request(prescriber(), prescription()), None),
    ("naive-now", request(prescriber(), prescription(), now=_NAIVE), facts(related=(PRESCRIBER,))),
    (
        "naive-relationship",
        request(prescriber(), prescription()),
        facts(relationships=(relationship(PRESCRIBER, start=_NAIVE, end=_NAIVE),)),
    ),
    ("consent-as-bool", request(prescriber(), prescription()), facts(consents=True)),
    ("no-patient", request(author(), prescription()), facts(ssin="")),
    ("other-patient-s-record", request(author(), prescription()), facts(ssin=OTHER_SSIN)),
    ("no-state", request(author(), prescription(state=None)), facts()),
    ("unknown-state", request(author(), prescription(state="on-hold")), facts()),
    ("target-not-a-record", request(author(), "MedicationRequest/1"), facts()),  # type: ignore[arg-type]
    ("read-without-record", request(author(), ResourceKind.PRESCRIPTION), facts()),
    (
        "visibility-without-choice",
        request(patient(), prescription(), Action.SET_VISIBILITY),
        facts(),
    ),
    (
        "presence-naive",
        request(pharmacist(), prescription(), path=ByPresence(CARD, _NAIVE)),
        facts(),
    ),
    ("actor-none", replace(request(author(), prescription()), actor=None), facts()),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("bad", "req", "known"), BAD, ids=[row[0] for row in BAD])
def test_fail_closed_on_bad_facts(bad: str, req: AccessRequest, known: PatientFacts) -> None:
    assert decide(req, known) == deny(R.ERROR)


def test_decide_never_raises_and_reasons_match_the_outcome() -> None:
    actors = [author(), prescriber(), pharmacist(), patient(), patient(OTHER_SSIN), admin(), fund()]
    targets = [
        *ResourceKind,
        *(record(kind, state=S.OPEN, author_nihdi=AUTHOR) for kind in ResourceKind),
    ]
    paths: list[AccessPath] = [ByRelationship(), presence(), ByRid(RID)]
    known = facts(related=(PRESCRIBER, PHARMACY))
    for actor, target, action, path in itertools.product(actors, targets, Action, paths):
        req = request(actor, target, action, path=path, new_visibility=visibility())
        decision = decide(req, known)
        assert isinstance(decision, Decision)
        assert decision.permit == decision.reason.permits, (req, decision)


def test_reason_codes_are_stable() -> None:
    assert {reason.value for reason in Reason} == {
        "permit-author",
        "permit-patient-self",
        "permit-rid",
        "permit-rid-status",
        "permit-presence",
        "permit-relationship",
        "permit-dispenser",
        "permit-reservation",
        "permit-mandate",
        "permit-parent",
        "permit-admin",
        "wrong-role",
        "not-own-data",
        "no-consent",
        "excluded",
        "no-relationship",
        "no-presence",
        "not-open",
        "hidden-by-patient",
        "not-author",
        "not-dispenser",
        "feedback-refused",
        "presence-not-proven",
        "presence-check-unavailable",
        "error",
    }
