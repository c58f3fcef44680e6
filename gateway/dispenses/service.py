"""Dispensing (MedicationDispense): deliver exactly once, undo within a window, read, search.

A dispense and the prescription's step to ``completed`` are one transaction (docs/architecture.md 6, issue 6):
the prescription's new version is written first, with compare-and-set on the version read, so of
two pharmacies dispensing the same prescription at once exactly one wins, on any number of gateway
instances; the loser gets 409 (``transitions.CONCURRENT_CHANGE``, or ``STATE_CONFLICT`` when it
read the prescription after the winner committed). The partial unique index of migration 0005
(one current ``completed`` dispense per prescription) backs this up in the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from sqlalchemy.exc import IntegrityError
from starlette.datastructures import QueryParams

from consent import Action, ByRid, Decision, Reason, Resource, ResourceKind, may_collect_for
from fhir_profiles import ValidatedDispense, systems, validate_medication_dispense
from fhir_profiles.identifiers import is_valid_ssin, normalise_ssin
from fhir_profiles.issues import Issue
from fhir_profiles.rules.product import ProductKind, product_kind
from gateway.access.facts import load_facts
from gateway.access.guard import Event, Guard
from gateway.access.service import GuardedService, Target
from gateway.audit.writer import safe_query
from gateway.auth.identity import Principal
from gateway.errors import BadRequest, Gone, NotFound, PreconditionFailed, ProfileViolation
from gateway.fhir import parameters, references, search
from gateway.fhir.preconditions import if_match_version
from gateway.prescriptions import transitions
from gateway.prescriptions.lifecycle import Step
from gateway.storage.store import Criteria, Page, SearchColumns, StoredVersion

RESOURCE: Final = "MedicationDispense"
SEARCH_PARAMS: Final = ("prescription", "patient:identifier", "status")
STATUSES: Final = frozenset({"completed", "entered-in-error"})
UNDO_WINDOW_PASSED: Final = "undo-window-passed"
PRESCRIPTION: Final = "MedicationRequest"  # the resource a dispense is of
_PRESCRIPTION_PATH: Final = "MedicationDispense.authorizingPrescription[0]"
_RECEIVER_PATH: Final = "MedicationDispense.receiver[0]"


def receiver_of(body: dict[str, Any]) -> str | None:
    """RX-16: who collected, ``receiver[0].identifier`` (an SSIN); ``None`` when not recorded.
    Anything else there is 422 naming the element."""
    receivers = body.get("receiver")
    if receivers is None:
        return None
    first = receivers[0] if isinstance(receivers, list) and receivers else None
    identifier = first.get("identifier") if isinstance(first, dict) else None
    identifier = identifier if isinstance(identifier, dict) else {}
    value = identifier.get("value")
    system = systems.normalise_system(str(identifier.get("system", "")))
    if (
        not isinstance(receivers, list)
        or len(receivers) != 1
        or system != systems.SSIN
        or not isinstance(value, str)
        or not is_valid_ssin(normalise_ssin(value))
    ):
        message = "one receiver: the SSIN of the person who collected (identifier)"
        raise ProfileViolation([Issue("value", _RECEIVER_PATH, message, "RX-16")])
    return normalise_ssin(value)


def _unknown_prescription() -> ProfileViolation:
    message = "no prescription matches this reference or RID"
    return ProfileViolation([Issue("not-found", _PRESCRIPTION_PATH, message, "RX-25")])


def _other_prescriptions_rid() -> ProfileViolation:
    # Names neither RID: the pharmacy holds both, the message only says they disagree.
    message = "the RID is not the referenced prescription's RID"
    return ProfileViolation([Issue("value", f"{_PRESCRIPTION_PATH}.identifier", message, "RX-17")])


class DispenseService(GuardedService):
    RESOURCE = RESOURCE

    # -- dispense (RX-7 markAsDelivered, RX-25) ---------------------------------------------------

    async def create(self, body: dict[str, Any], caller: Principal) -> StoredVersion:
        checked = validate_medication_dispense(body, now=self.info.now)
        if isinstance(checked, list):
            raise ProfileViolation(checked)
        receiver = receiver_of(body)
        guard = self.guard(caller)
        current = await self._prescription(checked, guard)
        # RX-17.1: the RID, with or without the reference, is the proof of the paper in the
        # pharmacist's hand and is decided as a fetch by RID is; without it, the network rules.
        path = ByRid(checked.prescription_rid) if checked.prescription_rid else None
        decision = await guard.decide(
            guard.request(Action.DISPENSE, current.described, path=path), current.ssin
        )
        audit = Event("create", RESOURCE, patient_ssin=current.ssin)
        # docs/architecture.md 6: the prescription's transition is audited too, in the same append.
        step = Event(
            "operation", PRESCRIPTION, current.stored.logical_id, current.ssin, query="dispense"
        )
        _check_performer(checked, caller, guard, audit)
        async with guard.access(decision, audit, step):
            outcome = transitions.check(guard, current, Step.DISPENSE, by=caller.nihdi, audit=audit)
            self._check_against(checked, current, guard, audit)
            if receiver is not None:
                await self._check_receiver(receiver, current, guard)
            await transitions.write(guard, current, outcome, audit=audit)
            resource = _completed(checked, current, caller)
            columns = SearchColumns(
                patient_ssin=current.ssin,
                status="completed",
                authored_on=checked.handed_over,
                author_nihdi=caller.nihdi,
                actor_nihdi=current.stored.author_nihdi,  # the prescriber (docs/architecture.md 5)
                based_on=current.stored.logical_id,
            )
            try:
                stored = await self.store.create(RESOURCE, resource, columns)
            except IntegrityError:  # migration 0005's index: another dispense is current
                guard.refuse_change(
                    transitions.CONCURRENT_CHANGE, audit, "the prescription was dispensed already"
                )
            audit.resource_id = stored.logical_id
        return stored

    async def _prescription(self, checked: ValidatedDispense, guard: Guard) -> Target:
        if checked.prescription_id is not None:
            try:
                current = await transitions.load(self.store, checked.prescription_id, guard.now)
            except (NotFound, Gone) as exc:
                raise _unknown_prescription() from exc
            rid = checked.prescription_rid  # upper case (RX-4), from either RID system (ID-19)
            if rid is not None and rid != (current.described.rid or "").upper():
                raise _other_prescriptions_rid()  # before any decision: nothing is written
            return current
        assert checked.prescription_rid is not None
        criteria = Criteria(identifier=(systems.RID, checked.prescription_rid))
        page = await self.store.search(PRESCRIPTION, criteria, count=1)
        if not page.items:
            raise _unknown_prescription()
        return transitions.current(page.items[0], guard.now)

    async def _check_receiver(self, receiver: str, current: Target, guard: Guard) -> None:
        """RX-16: someone other than the patient collects only under an active ``collect``
        mandate of the patient, or as the parent of a child under 12 (checked once the pharmacy
        may dispense, so it learns nothing of the mandates otherwise)."""
        if current.ssin is None or receiver == current.ssin:
            return
        facts = await load_facts(self.store, current.ssin, now=guard.now, holder=receiver)
        if not may_collect_for(receiver, facts, guard.now):
            message = "the receiver holds no active collect mandate of the patient"
            raise ProfileViolation([Issue("business-rule", _RECEIVER_PATH, message, "RX-16")])

    def _check_against(
        self, checked: ValidatedDispense, current: Target, guard: Guard, audit: Event
    ) -> None:
        """Rules that need the prescription: same patient, RX-22 magistral, RX-11 start."""
        issues: list[Issue] = []
        if checked.patient_ssin is not None and checked.patient_ssin != current.ssin:
            message = "the patient is not the prescription's patient"
            issues.append(Issue("value", "MedicationDispense.subject", message, "RX-25"))
        concept = current.resource.get("medicationCodeableConcept") or {}
        # RX-22, RX-23: a magistral or imported product (no Belgian code) may be dispensed as text.
        if checked.cnk is None and product_kind(concept) is ProductKind.CODED:
            message = "the delivered product needs its CNK: the prescription is not magistral"
            issues.append(
                Issue(
                    "required",
                    "MedicationDispense.medicationCodeableConcept.coding",
                    message,
                    "RX-23",
                )
            )
        if issues:
            raise ProfileViolation(issues)
        start = current.stored.columns.period_start
        if start is not None and guard.now < start:
            # RX-11: a deferred start; the pharmacist executes it only once it is valid.
            guard.refuse_change(
                transitions.STATE_CONFLICT,
                audit,
                "cannot dispense this prescription: its validity has not started",
            )

    # -- $undo (RX-7 markAsUnDelivered) -----------------------------------------------------------

    async def undo(
        self, logical_id: str, body: dict[str, Any], caller: Principal, *, if_match: str | None
    ) -> StoredVersion:
        expected = if_match_version(if_match)
        given = parameters.read(body, "$undo", frozenset({"reason"}))
        guard = self.guard(caller)
        dispense = await self.load(logical_id)
        decision = await self.decide(guard, Action.UNDO_DISPENSE, dispense)
        audit = Event("operation", RESOURCE, logical_id, dispense.ssin, query="$undo")
        prescription_id = dispense.stored.columns.based_on
        assert prescription_id is not None
        step = Event(
            "operation", PRESCRIPTION, prescription_id, dispense.ssin, query="undo-dispense"
        )
        async with guard.access(decision, audit, step):
            stored = dispense.stored
            if stored.status != "completed":
                guard.refuse_change(
                    transitions.STATE_CONFLICT, audit, "this dispense was undone already"
                )
            window = timedelta(hours=self.settings.dispense_undo_window_hours)
            # Measured from when the gateway recorded the dispense, which the pharmacy cannot
            # backdate (whenHandedOver is the pharmacy's statement).
            if guard.now - stored.last_updated > window:
                guard.refuse_change(
                    UNDO_WINDOW_PASSED,
                    audit,
                    f"a dispense can be undone within {self.settings.dispense_undo_window_hours:g} h",
                )
            current = await transitions.load(self.store, prescription_id, guard.now)
            outcome = transitions.check(
                guard, current, Step.UNDO_DISPENSE, by=caller.nihdi, audit=audit
            )
            await transitions.write(guard, current, outcome, audit=audit)
            undone = {k: v for k, v in dispense.resource.items() if k != "meta"}
            undone["status"] = "entered-in-error"
            if "reason" in given:
                undone["statusReasonCodeableConcept"] = parameters.reason(given["reason"])
            try:
                result = await self.store.update(
                    RESOURCE,
                    logical_id,
                    undone,
                    SearchColumns(
                        patient_ssin=dispense.ssin,
                        status="entered-in-error",
                        authored_on=stored.columns.authored_on,
                        author_nihdi=stored.author_nihdi,
                        actor_nihdi=stored.columns.actor_nihdi,
                        based_on=stored.columns.based_on,
                    ),
                    expected_version=stored.version_id if expected is None else expected,
                    same_identifiers=True,
                )
            except PreconditionFailed:
                if expected is not None:
                    raise
                guard.refuse_change(
                    transitions.CONCURRENT_CHANGE,
                    audit,
                    "this dispense was changed at the same time",
                )
        return result

    # -- read and search -----------------------------------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        # ``ssin``: the prescription's subject, copied onto the dispense (ID-21).
        return Resource(
            ResourceKind.DISPENSE,
            id=stored.logical_id,
            patient_ssin=ssin,
            author_nihdi=stored.author_nihdi,
            provider_nihdi=stored.columns.actor_nihdi,
        )

    async def search(self, params: QueryParams, caller: Principal) -> Page:
        """``prescription=`` (decided as a read of that prescription: its author, the patient,
        whoever may read it) or ``patient:identifier=`` (decided as a search of the patient's
        dispenses; a pharmacy without the network rules sees its own only)."""
        search.check_known(params, SEARCH_PARAMS)
        statuses = _statuses(params)
        paging = search.paging(params, self.settings.default_page_size, self.settings.max_page_size)
        guard = self.guard(caller)
        prescription = search.single(params, "prescription")
        ssin = search.single(params, "patient:identifier")
        if ssin is not None:
            ssin = search.patient_param(ssin, "patient:identifier")
        elif prescription is None and caller.role == "patient":
            ssin = caller.ssin  # PO-4: "my dispenses"
        event = Event("search", RESOURCE, patient_ssin=ssin, query=safe_query(params.multi_items()))
        if prescription is not None:
            current = await self._searched_prescription(prescription, guard)
            if current is None:
                await guard.audit_no_match(event)  # nothing found, nothing disclosed
                return Page(items=[], total=0)
            event.patient_ssin = current.ssin
            decision = await guard.decide(
                guard.request(Action.READ, current.described), current.ssin
            )
            if not decision.permit:  # answered like a miss: no existence oracle (docs/access.md)
                await guard.audit_unseen(decision, event)
                return Page(items=[], total=0)
            criteria = Criteria(
                patient_ssin=ssin, statuses=statuses, based_on=current.stored.logical_id
            )
        elif ssin is not None:
            decision = await guard.decide(guard.request(Action.SEARCH, ResourceKind.DISPENSE), ssin)
            own = decision.reason is Reason.PERMIT_DISPENSER
            criteria = Criteria(
                patient_ssin=ssin,
                statuses=statuses,
                author_nihdi=caller.nihdi if own else None,
            )
        else:
            raise BadRequest(
                "search dispenses by prescription or by patient:identifier",
                expression="prescription",
            )
        async with guard.access(decision, event):
            return await self.store.page(RESOURCE, search.narrow(criteria, params), paging)

    async def _searched_prescription(self, value: str, guard: Guard) -> Target | None:
        logical_id = references.reference_id(value, "prescription", PRESCRIPTION, self.info.base)
        try:
            return await transitions.load(self.store, logical_id, guard.now)
        except (NotFound, Gone):
            return None


def _statuses(params: QueryParams) -> tuple[str, ...]:
    values = search.codes(params, "status")
    if any(v not in STATUSES for v in values):
        raise BadRequest("status: completed or entered-in-error", expression="status")
    return tuple(values)


def _check_performer(
    checked: ValidatedDispense, caller: Principal, guard: Guard, audit: Event
) -> None:
    """A pharmacy records its own dispenses only (RX-25: the performer is the pharmacy)."""
    for performer in checked.resource.get("performer") or ():
        actor = (performer or {}).get("actor") or {}
        identifier = actor.get("identifier") or {}
        system = systems.normalise_system(str(identifier.get("system", "")))
        if system == systems.NIHDI_ORGANIZATION and identifier.get("value") != caller.nihdi:
            guard.refuse(Decision(False, Reason.NOT_AUTHOR), audit)


def _completed(checked: ValidatedDispense, current: Target, caller: Principal) -> dict[str, Any]:
    """The dispense as stored: the prescription by reference and RID, its patient, and the
    calling pharmacy as performer (from its certificate, not from the body)."""
    resource = dict(checked.resource)
    link: dict[str, Any] = {"reference": f"{PRESCRIPTION}/{current.stored.logical_id}"}
    rid = current.described.rid
    if rid:
        link["identifier"] = {"system": systems.RID, "value": rid}
    resource["authorizingPrescription"] = [link]
    resource["subject"] = current.resource.get("subject")
    resource["performer"] = [
        {"actor": {"identifier": {"system": systems.NIHDI_ORGANIZATION, "value": caller.nihdi}}}
    ]
    return resource
