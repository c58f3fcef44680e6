"""The access decision: ``decide(request, facts) -> Decision`` (docs/architecture.md 5, domain CO-12).

Order, after the inputs are checked for consistency:

1. CO-12.1 the role may take this action on this kind of data (``ACCESS_MATRIX``), else
   ``wrong-role``. Then the patient's own data (PO-4) and the operator's audit reads are settled.
2. A provider's own act stands on its own: the author's prescriptions and claims, the dispensing
   pharmacy's dispenses. A pharmacy holding the RID takes the RID path (RX-13, RX-17.1).
3. Otherwise the network rules: CO-12.2 consent, CO-12.3 no exclusion, CO-12.4 a relationship (or,
   for a pharmacy, proof of the patient's presence: RX-18); then CO-12.5 the document rules: the
   prescription is open (RX-9, RX-17.2) and visible to this provider (RX-13, RX-14). A pharmacy
   listing the prescriptions of the patient at its counter needs no consent (RX-18).

Every rule is a small function below; ``decide`` never raises: any error is ``Reason.ERROR``
(fail closed). Logging the decision (CO-12.6, SEC-5) is the caller's job: this module is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final, TypeAlias

from consent._predicates import (
    dispensed_by,
    has_consent,
    has_relationship,
    holds_mandate,
    is_author,
    is_excluded,
    is_open,
    is_parent_of_young_child,
    is_present,
    names_me,
    rid_matches,
    visible_to_pharmacy,
    visible_to_prescribers,
)
from consent.model import (
    AccessRequest,
    Action,
    Actor,
    ByRid,
    Decision,
    MandateAction,
    PatientFacts,
    PharmacyVisibility,
    PrescriptionState,
    Reason,
    Resource,
    ResourceKind,
    Role,
)

_LOOK: Final = frozenset({Action.READ, Action.SEARCH})
_WRITE_TOO: Final = frozenset({Action.READ, Action.SEARCH, Action.CREATE, Action.UPDATE})

# CO-12.1, CO-13: what each role may attempt at all. Everything absent is ``wrong-role``: funds
# (outside the care relationship), prescription content changes (RX-7), exclusions registered by
# anyone but the patient (CO-10), audit writes (only the gateway's audit writer writes).
ACCESS_MATRIX: Final[dict[Role, dict[ResourceKind, frozenset[Action]]]] = {
    Role.PRESCRIBER: {
        ResourceKind.PRESCRIPTION: frozenset(
            {
                Action.READ,
                Action.SEARCH,
                Action.CREATE,
                Action.REVOKE,
                Action.SET_VISIBILITY,
                Action.SET_FEEDBACK,
            }
        ),
        ResourceKind.DISPENSE: _LOOK,
        ResourceKind.CONSENT: _WRITE_TOO,
        ResourceKind.RELATIONSHIP: _WRITE_TOO,
        ResourceKind.CLAIM: _WRITE_TOO,  # eAttest: send, read, cancel (update)
        ResourceKind.FEEDBACK: _LOOK,  # RX-8: the feedback on his own prescriptions
    },
    Role.PHARMACIST: {
        ResourceKind.PRESCRIPTION: frozenset({Action.READ, Action.SEARCH, Action.DISPENSE}),
        ResourceKind.DISPENSE: frozenset({Action.READ, Action.SEARCH, Action.UNDO_DISPENSE}),
        ResourceKind.CONSENT: _WRITE_TOO,  # CO-13: pharmacists may register consent
        ResourceKind.RELATIONSHIP: _WRITE_TOO,
        # RX-8: send feedback on a prescription it may read; read and search what it sent
        ResourceKind.FEEDBACK: frozenset({Action.READ, Action.SEARCH, Action.CREATE}),
        # RX-16: a nursing home's pharmacy reads and ends the mandates it holds
        ResourceKind.MANDATE: frozenset({Action.READ, Action.SEARCH, Action.UPDATE}),
    },
    Role.PATIENT: {
        # Revoking is the author's (docs/architecture.md 4 $revoke); the patient deletes an open
        # one instead (RX-7 "verwijderen", $delete-by-patient).
        ResourceKind.PRESCRIPTION: frozenset(
            {Action.READ, Action.SEARCH, Action.SET_VISIBILITY, Action.RESERVE, Action.DELETE}
        ),
        ResourceKind.DISPENSE: _LOOK,
        ResourceKind.CONSENT: _WRITE_TOO,
        ResourceKind.RELATIONSHIP: _WRITE_TOO,
        ResourceKind.EXCLUSION: _WRITE_TOO,
        ResourceKind.CLAIM: _LOOK,
        ResourceKind.AUDIT: _LOOK,
        ResourceKind.MANDATE: _WRITE_TOO,  # RX-16, PO-4: gives, reads and ends his mandates
        # No FEEDBACK [A]: feedback is the pharmacist's word to the prescriber (RX-8); Recip-e
        # shows it to neither the patient nor the portal.
    },
    # The operator reads the audit trail (docs/architecture.md 4, 8) and no health content [A]:
    # no Claim or ClaimResponse either (what the care was, for whom, what was paid). He runs the
    # claim queue with ``gateway claims list|retry``, which shows ids, funds, states and reason
    # codes, never a patient (docs/claims.md "Who sees what").
    Role.ADMIN: {ResourceKind.AUDIT: _LOOK},
    Role.FUND: {},
}


class _Inconsistent(Exception):
    """The request contradicts itself or the facts: a caller bug, decided as ``Reason.ERROR``."""


def decide(request: AccessRequest, facts: PatientFacts) -> Decision:
    """Permit or deny ``request`` about the patient of ``facts``, with a reason. Never raises."""
    try:
        return _decide(request, facts)
    except Exception:
        return _deny(Reason.ERROR)  # docs/architecture.md 5: fail closed


def _permit(reason: Reason) -> Decision:
    return Decision(True, reason)


def _deny(reason: Reason) -> Decision:
    return Decision(False, reason)


def _decide(req: AccessRequest, facts: PatientFacts) -> Decision:
    _check_inputs(req, facts)
    role = _role_of(req.actor)
    if role is None or req.action not in ACCESS_MATRIX[role].get(req.kind, frozenset()):
        return _deny(Reason.WRONG_ROLE)  # CO-12.1
    if role is Role.PATIENT:
        return _patient(req, facts)
    if role is Role.ADMIN:
        return _permit(Reason.PERMIT_ADMIN)  # the matrix lets the operator read audit only
    if not req.actor.nihdi:
        return _deny(Reason.WRONG_ROLE)  # RX-18(a): a provider acts under its NIHDI number
    rules = _PROVIDER_RULES.get(req.kind)
    if rules is None:
        raise _Inconsistent("no provider rules for this kind")
    return rules(req, facts, role)


def _check_inputs(req: AccessRequest, facts: PatientFacts) -> None:
    """Refuse requests that cannot be decided soundly; the caller sees ``Reason.ERROR``."""
    if req.now.tzinfo is None or req.now.utcoffset() is None:
        raise _Inconsistent("now must be timezone-aware")
    if not isinstance(facts.ssin, str) or not facts.ssin:
        raise _Inconsistent("facts without a patient")
    target = req.target
    if isinstance(target, ResourceKind):
        if req.action is not Action.SEARCH:
            raise _Inconsistent("only a search is decided without a record")
        return
    if not isinstance(target, Resource):
        raise _Inconsistent("target must be a Resource or a ResourceKind")
    if target.patient_ssin is not None and target.patient_ssin != facts.ssin:
        raise _Inconsistent("facts loaded for another patient")
    if target.kind is ResourceKind.PRESCRIPTION and req.action is not Action.CREATE:
        if target.state is None:
            raise _Inconsistent("a stored prescription has a state")
        PrescriptionState(target.state)  # a value outside the model is an error, not "closed"
    if req.action is Action.SET_VISIBILITY and req.visibility is None:
        raise _Inconsistent("set-visibility without the new choice")


def _role_of(actor: Actor) -> Role | None:
    try:
        return Role(actor.role)
    except ValueError:
        return None  # an unknown role is refused (CO-12.1)


# --- the patient (PO-4) -------------------------------------------------------------------------


def _patient(req: AccessRequest, facts: PatientFacts) -> Decision:
    """PO-4, docs/architecture.md 5: a patient sees and manages everything about themself (visibility,
    consent, relationships, exclusions, mandates, audit trail); someone else's data only under an
    active mandate or as the parent of a child under 12, for what it allows (RX-16, PO-3)."""
    actor = req.actor
    if not actor.ssin:
        return _deny(Reason.NOT_OWN_DATA)
    if actor.ssin == facts.ssin:
        return _permit(Reason.PERMIT_PATIENT_SELF)
    if req.kind is ResourceKind.MANDATE:
        return _holder_on_mandate(req)
    return _acting_for(req, facts)


def _acting_for(req: AccessRequest, facts: PatientFacts) -> Decision:
    """RX-16, PO-3, PO-4: a patient acts for another person as the parent of a child under 12
    (collect, view and manage), or under an active mandate naming him, for what it grants: a read
    or search needs ``view``, or ``collect`` for the open prescriptions only; any change needs
    ``manage``. Anything else stays ``not-own-data``."""
    actor, now = req.actor, req.now
    if is_parent_of_young_child(actor, facts, now):
        return _permit(Reason.PERMIT_PARENT)
    if req.action not in _LOOK:
        granted = holds_mandate(actor, facts, now, MandateAction.MANAGE)
    elif holds_mandate(actor, facts, now, MandateAction.VIEW):
        granted = True
    else:
        granted = (
            req.kind is ResourceKind.PRESCRIPTION
            and holds_mandate(actor, facts, now, MandateAction.COLLECT)
            and (isinstance(req.target, ResourceKind) or is_open(req.target))
        )
    return _permit(Reason.PERMIT_MANDATE) if granted else _deny(Reason.NOT_OWN_DATA)


def _holder_on_mandate(req: AccessRequest) -> Decision:
    """RX-16 [A]: the holder reads the mandate he holds and may end it (he may give it up); only
    the mandator gives one, and no holder, parent or not, gives or sees the mandator's others.
    A search is permitted as "the mandates I hold": the caller narrows the rows to them."""
    record = req.target
    if isinstance(record, ResourceKind):
        return _permit(Reason.PERMIT_MANDATE)
    if (
        isinstance(record, Resource)
        and req.action in (Action.READ, Action.UPDATE)
        and record.holder_ssin is not None
        and record.holder_ssin == req.actor.ssin
    ):
        return _permit(Reason.PERMIT_MANDATE)
    return _deny(Reason.NOT_OWN_DATA)


# --- the network rules (CO-12.2..4) -------------------------------------------------------------


def _network_rules(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """docs/architecture.md 5: a provider reaches a patient's data held by others only with consent, without
    exclusion and with a relationship, in the order of CO-12."""
    if not has_consent(facts, req.now):
        return _deny(Reason.NO_CONSENT)  # CO-12.2
    return _no_exclusion_and_relationship(req, facts, role)


def _at_the_counter(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """RX-17.2, RX-18: a pharmacy lists the open prescriptions of the patient at its counter with
    the eID read, or the SSIN and an active relationship, unless excluded (CO-10). The Recip-e
    sources name no informed consent for this path: that consent governs the hubs' exchange of
    health data (CO-1..CO-4), not this listing [A]."""
    decision = _no_exclusion_and_relationship(req, facts, role)
    if decision.reason is Reason.NO_RELATIONSHIP and holds_mandate(
        req.actor, facts, req.now, MandateAction.COLLECT
    ):
        return _permit(Reason.PERMIT_MANDATE)  # RX-16: the nursing home's pharmacy
    return decision


def _no_exclusion_and_relationship(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """CO-12.3, CO-12.4. A pharmacy may show the patient's presence (eID read) instead of a
    registered relationship (RX-17.2, RX-18); a prescriber needs a registered one (RX-9:
    "centrally registered")."""
    if is_excluded(req.actor, role, facts):
        return _deny(Reason.EXCLUDED)  # CO-12.3: no break-glass override
    if role is Role.PHARMACIST and is_present(req.path, req.now):
        return _permit(Reason.PERMIT_PRESENCE)
    if has_relationship(req.actor, facts, req.now):
        return _permit(Reason.PERMIT_RELATIONSHIP)  # CO-12.4
    return _deny(Reason.NO_RELATIONSHIP)


# --- prescriptions ------------------------------------------------------------------------------


def _on_prescription(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    if role is Role.PRESCRIBER:
        return _prescriber_on_prescription(req, facts, role)
    return _pharmacist_on_prescription(req, facts, role)


def _prescriber_on_prescription(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """RX-9, RX-14, docs/architecture.md 5: own prescriptions always; others' open and unhidden ones through
    the network rules."""
    if isinstance(req.target, ResourceKind):
        # The search itself: own prescriptions always appear; without the network rules, only
        # those (the reason says so: ``permit-author``).
        network = _network_rules(req, facts, role)
        return network if network.permit else _permit(Reason.PERMIT_AUTHOR)
    prescription = req.target
    if req.action is Action.CREATE:
        return _author_creates(req.actor, prescription)
    if is_author(req.actor, prescription):
        return _author_on_own(req, facts, role, prescription)
    if req.action in (Action.REVOKE, Action.SET_VISIBILITY, Action.SET_FEEDBACK):
        return _deny(Reason.NOT_AUTHOR)  # docs/architecture.md 4: the prescriber who wrote it
    network = _network_rules(req, facts, role)
    if not network.permit:
        return network
    if not is_open(prescription):
        return _deny(Reason.NOT_OPEN)  # RX-9: open ones only
    if not visible_to_prescribers(prescription, req.actor, facts, req.now):
        return _deny(Reason.HIDDEN_BY_PATIENT)  # RX-14
    return network


def _author_creates(actor: Actor, record: Resource) -> Decision:
    """RX-5, docs/architecture.md 4: a prescriber writes in their own name only. No consent or relationship:
    the consultation itself is the contact (RX-9), and eAttest needs none (CO-9). An exclusion
    bars reading the patient's data, not prescribing for a patient in front of you [A]."""
    return _permit(Reason.PERMIT_AUTHOR) if is_author(actor, record) else _deny(Reason.NOT_AUTHOR)


def _author_on_own(
    req: AccessRequest, facts: PatientFacts, role: Role, prescription: Resource
) -> Decision:
    """docs/architecture.md 5: the author always reads his prescription and revokes it while it is open,
    without consent or relationship (RX-9: prescribers always read their own).

    [A] An exclusion bars the patient's data held by others, not the author's own act: he still
    reads and revokes it (a wrong prescription can be withdrawn). Setting the visibility is done
    at the patient's request (RX-13, RX-14), so an exclusion stops it, and choosing one pharmacy
    is the patient's alone (RX-13).
    """
    if req.action is Action.REVOKE:
        # Whether the state still allows it (open or in process) is the lifecycle's: 409 (RX-7).
        return _permit(Reason.PERMIT_AUTHOR)
    if req.action is Action.SET_VISIBILITY:
        if is_excluded(req.actor, role, facts):
            return _deny(Reason.EXCLUDED)
        if req.visibility is None or req.visibility.pharmacies == PharmacyVisibility.ONE:
            return _deny(Reason.WRONG_ROLE)
    return _permit(Reason.PERMIT_AUTHOR)


def _pharmacist_on_prescription(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """RX-13, RX-17, RX-18: by RID; in a search by patient with presence or relationship; any
    other way (a read by id, a dispense by reference) under the network rules."""
    if isinstance(req.target, ResourceKind):
        if isinstance(req.path, ByRid):
            raise _Inconsistent("a RID lookup is decided per record (READ with ByRid)")
        return _at_the_counter(req, facts, role)  # RX-18 (a) and (b)
    prescription = req.target
    if req.action is not Action.SEARCH and dispensed_by(req.actor, prescription):
        # [A] The pharmacy that delivered it reads it again and archives it (RX-7): its own act,
        # like the author's, so neither the state nor an exclusion stops it. (A search by patient
        # shows open prescriptions only, RX-17.2.)
        return _permit(Reason.PERMIT_DISPENSER)
    if isinstance(req.path, ByRid):
        return _by_rid(req, facts, role, req.path, prescription)
    if holds_mandate(req.actor, facts, req.now, MandateAction.COLLECT):
        return _for_the_mandator(req, facts, role, prescription)
    # A record in a search by patient is decided as the search is (consent.search agrees).
    rules = _at_the_counter if req.action is Action.SEARCH else _network_rules
    network = rules(req, facts, role)
    if not network.permit:
        return network
    if req.action is not Action.DISPENSE and not is_open(prescription):
        # RX-17.2: the patient's open prescriptions. A dispense is let through to the lifecycle,
        # which refuses a prescription that is no longer open with 409 (RX-7, docs/architecture.md 6).
        return _deny(Reason.NOT_OPEN)
    if not visible_to_pharmacy(prescription, req.actor.nihdi):
        return _deny(Reason.HIDDEN_BY_PATIENT)  # RX-13
    return network


def _for_the_mandator(
    req: AccessRequest, facts: PatientFacts, role: Role, prescription: Resource
) -> Decision:
    """RX-16: a pharmacy holding an active professional mandate of the patient (a nursing home's)
    lists, fetches and delivers his open prescriptions without the eID read, a relationship or
    consent, still barred by an exclusion (CO-10) and by his visibility choice (RX-13)."""
    if is_excluded(req.actor, role, facts):
        return _deny(Reason.EXCLUDED)
    if req.action is not Action.DISPENSE and not is_open(prescription):
        return _deny(Reason.NOT_OPEN)  # RX-17.2; a dispense goes on to the lifecycle's 409
    if not visible_to_pharmacy(prescription, req.actor.nihdi):
        return _deny(Reason.HIDDEN_BY_PATIENT)
    return _permit(Reason.PERMIT_MANDATE)


def _by_rid(
    req: AccessRequest, facts: PatientFacts, role: Role, path: ByRid, prescription: Resource
) -> Decision:
    """RX-13, RX-17.1, docs/architecture.md 5: the RID stands for the patient's presence and overrides the
    visibility flag, with no consent or relationship, while the prescription is open. Once it is
    no longer open the RID still shows its state, not its content (RX-6 getPrescriptionStatus:
    a pharmacist sees that it was revoked); a dispense goes on to the lifecycle, which answers 409.

    [A] An exclusion of this pharmacy still denies, for a fetch and for a dispense alike: RX-13
    lets the barcode override the visibility flag, a choice about which pharmacies see the
    prescription listed, while CO-10 says an excluded provider "never gets access".
    """
    if not rid_matches(path, prescription):
        raise _Inconsistent("the RID held is not this prescription's")
    if is_excluded(req.actor, role, facts):
        return _deny(Reason.EXCLUDED)
    if req.action is Action.READ and not is_open(prescription):
        return _permit(Reason.PERMIT_RID_STATUS)
    return _permit(Reason.PERMIT_RID)


# --- other kinds --------------------------------------------------------------------------------


def _on_dispense(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """A dispense is the pharmacy's own act: it reads and undoes its own (RX-7) [A]; any other
    provider reads dispenses, the patient's medication history, through the network rules."""
    if isinstance(req.target, ResourceKind):
        network = _network_rules(req, facts, role)
        if network.permit or role is not Role.PHARMACIST:
            return network
        return _permit(Reason.PERMIT_DISPENSER)  # the search shows the pharmacy's own only
    if role is Role.PHARMACIST and is_author(req.actor, req.target):
        return _permit(Reason.PERMIT_DISPENSER)
    if role is Role.PRESCRIBER and req.action is Action.READ and names_me(req.actor, req.target):
        # Issue 6: the author of the prescription sees whether and when it was dispensed, as he
        # always reads the prescription itself (docs/architecture.md 5).
        return _permit(Reason.PERMIT_AUTHOR)
    if req.action is Action.UNDO_DISPENSE:
        return _deny(Reason.NOT_DISPENSER)  # RX-7: only the same pharmacy
    return _network_rules(req, facts, role)


def _on_claim(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """eAttest (AT-1, CO-9): no consent, relationship or exclusion applies; a claim is the
    provider's own record of the care he gave and billed, so he sends, reads and cancels (UPDATE)
    only his own: the provider named in the claim, the person under any competence code (ID-7).
    A claim and its ClaimResponse are decided alike. For a search the reason ``permit-author``
    means "own claims only" (the caller narrows the rows to the author's)."""
    if isinstance(req.target, ResourceKind):
        return _permit(Reason.PERMIT_AUTHOR)
    return (
        _permit(Reason.PERMIT_AUTHOR)
        if is_author(req.actor, req.target)
        else _deny(Reason.NOT_AUTHOR)
    )


def _on_consent_record(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """CO-2, CO-5, docs/architecture.md 4: a provider registers, reads or ends the informed consent and its
    own relationship with the patient's proof of presence (the eID read); consent is not needed,
    since registering it is the point. [A] The patient's relationships with other providers are
    not shown (they reveal who else treats the patient); exclusions are the patient's alone."""
    if is_excluded(req.actor, role, facts):
        return _deny(Reason.EXCLUDED)  # CO-10
    if not is_present(req.path, req.now):
        return _deny(Reason.NO_PRESENCE)
    record = req.target
    if (
        isinstance(record, Resource)
        and record.kind is ResourceKind.RELATIONSHIP
        and not names_me(req.actor, record)
    ):
        return _deny(Reason.NOT_OWN_DATA)
    return _permit(Reason.PERMIT_PRESENCE)


def _on_feedback(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """RX-8: feedback is a message from one pharmacy to the author of one prescription. Each reads
    and searches only his own correspondence: the pharmacy what it sent, the author (the person
    under any competence code, ID-7) what he received; anyone else is refused a read
    (``not-author``) and finds nothing in a search. For a search the reason ``permit-author``
    means "own feedback only" (the caller narrows the rows to the sender or the recipient)."""
    if isinstance(req.target, ResourceKind):
        return _permit(Reason.PERMIT_AUTHOR)
    feedback = req.target
    if req.action is Action.CREATE:
        return _pharmacy_sends_feedback(req, facts, role, feedback)
    mine = (
        is_author(req.actor, feedback) if role is Role.PHARMACIST else names_me(req.actor, feedback)
    )
    return _permit(Reason.PERMIT_AUTHOR) if mine else _deny(Reason.NOT_AUTHOR)


def _pharmacy_sends_feedback(
    req: AccessRequest, facts: PatientFacts, role: Role, feedback: Resource
) -> Decision:
    """RX-8: a pharmacy writes, in its own name, about a prescription it may read, decided as a
    read of that prescription: it holds it in process or delivered it (its own act), it holds
    the RID, or the network rules let it read it. A RID that shows only the state of a
    prescription no longer open (``permit-rid-status``) is no read of its content: ``not-open``.
    Then the author's flag: switched off, ``feedback-refused``."""
    prescription = feedback.about
    if prescription is None or prescription.kind is not ResourceKind.PRESCRIPTION:
        raise _Inconsistent("feedback is about a prescription")
    if not is_author(req.actor, feedback):
        return _deny(Reason.NOT_AUTHOR)  # the sender is the calling pharmacy
    if _holds(req.actor, prescription):
        read = _permit(Reason.PERMIT_DISPENSER)  # [A] in process at this pharmacy: its own act
    else:
        as_read = replace(req, action=Action.READ, target=prescription)
        read = _pharmacist_on_prescription(as_read, facts, role)
    if not read.permit:
        return read
    if read.reason is Reason.PERMIT_RID_STATUS:
        return _deny(Reason.NOT_OPEN)
    if not prescription.accepts_feedback:
        return _deny(Reason.FEEDBACK_REFUSED)
    return read


def _holds(actor: Actor, prescription: Resource) -> bool:
    """The pharmacy holds the prescription in process (RX-7 putRidsInProcess, RX-15)."""
    return (
        prescription.state is PrescriptionState.IN_PROCESS
        and prescription.held_by is not None
        and prescription.held_by == actor.nihdi
    )


def _on_mandate(req: AccessRequest, facts: PatientFacts, role: Role) -> Decision:
    """RX-16: a pharmacy reads and ends (gives up) the professional mandates it holds; a search
    is narrowed to them by the caller (``permit-mandate``: own only)."""
    if isinstance(req.target, ResourceKind):
        return _permit(Reason.PERMIT_MANDATE)
    if req.target.holder_ssin is None and names_me(req.actor, req.target):
        return _permit(Reason.PERMIT_MANDATE)
    return _deny(Reason.NOT_OWN_DATA)


_Rules: TypeAlias = Callable[[AccessRequest, PatientFacts, Role], Decision]

_PROVIDER_RULES: Final[dict[ResourceKind, _Rules]] = {
    ResourceKind.PRESCRIPTION: _on_prescription,
    ResourceKind.DISPENSE: _on_dispense,
    ResourceKind.CLAIM: _on_claim,
    ResourceKind.CONSENT: _on_consent_record,
    ResourceKind.RELATIONSHIP: _on_consent_record,
    ResourceKind.FEEDBACK: _on_feedback,
    ResourceKind.MANDATE: _on_mandate,
}
