"""Prescriptions (MedicationRequest): create with a RID, conditional create, read, history,
``$set-visibility`` and the lifecycle operations (``$revoke``, ``$take-in-process``, ``$release``,
``$reserve``, ``$archive``; RX-7). Searches are in ``searching``; the state machine is
``lifecycle`` and ``transitions`` writes its steps; dispensing is ``gateway.dispenses``.

Validation is ``fhir_profiles``; storage is ``ResourceStore``; who may see or do what is
``consent.decide``, asked through the request's ``Guard``, which also writes the AuditEvent
(docs/architecture.md 5, 8). The service never builds HTTP responses: routes do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.datastructures import QueryParams

from consent import (
    Action,
    ByRid,
    Decision,
    PatientFacts,
    Reason,
    Resource,
    ResourceKind,
    excludes_pharmacy,
)
from fhir_profiles import (
    ValidatedPrescription,
    new_rid,
    normalise_rid,
    systems,
    validate_medication_request,
)
from fhir_profiles.feedback import flag_extension
from gateway.access.guard import NO_PATIENT, Event, RequestInfo, system_clock
from gateway.access.service import Created, GuardedService
from gateway.auth.identity import Principal
from gateway.errors import BadRequest, ProfileViolation
from gateway.fhir import parameters
from gateway.fhir.preconditions import if_match_version
from gateway.prescriptions import describe, server_managed, timing, transitions
from gateway.prescriptions.feedback_flag import SET_FEEDBACK, allowed_of
from gateway.prescriptions.lifecycle import Step
from gateway.prescriptions.operations import OPERATIONS, action_for
from gateway.prescriptions.searching import RESOURCE, identifiers_of, search_prescriptions
from gateway.prescriptions.visibility import parse_change
from gateway.settings import Settings
from gateway.storage.store import (
    Criteria,
    IdentifierTaken,
    Page,
    ResourceStore,
    SearchColumns,
    StoredVersion,
)

__all__ = ["RESOURCE", "Created", "PrescriptionService", "search_columns"]


# RX-4: 36^9 RIDs make a collision rare but not impossible at 10^8 prescriptions a year: draw again.
_RID_ATTEMPTS = 5


def search_columns(resource: dict[str, Any], checked: ValidatedPrescription) -> SearchColumns:
    # RX-7: the state is computed from the end of validity (inclusive Brussels date); the same
    # function recomputes these columns in migration 0007.
    instants = timing.instants_of(resource)
    return SearchColumns(
        patient_ssin=checked.patient_ssin or None,
        status=str(resource.get("status", "active")),
        authored_on=instants.authored_on,
        author_nihdi=checked.requester_nihdi,
        identifiers=identifiers_of(resource),
        period_start=instants.valid_from,
        period_end=instants.expires_at,
    )


class PrescriptionService(GuardedService):
    RESOURCE = RESOURCE

    def __init__(
        self, store: ResourceStore, settings: Settings, info: RequestInfo | None = None
    ) -> None:
        # Outside a request (the demo's seeding): the system clock, no request id.
        super().__init__(store, settings, info or RequestInfo(now=system_clock()))

    # -- create ----------------------------------------------------------------------------------

    async def create(
        self, body: dict[str, Any], caller: Principal, *, if_none_exist: str | None = None
    ) -> Created:
        refused = server_managed.issues(body)  # the gateway's own extensions (RX-7, RX-13)
        if refused:
            raise ProfileViolation(refused)
        checked = validate_medication_request(
            body, now=self.info.now, nihdi_check_digit=self.settings.nihdi_check_digit
        )
        if isinstance(checked, list):
            raise ProfileViolation(checked)
        guard = self.guard(caller)
        ssin = checked.patient_ssin or None
        # RX-5: the author is the NIHDI number the profile found behind ``requester`` (identifier
        # or contained Practitioner/PractitionerRole); the decision compares it with the caller's.
        target = Resource(
            ResourceKind.PRESCRIPTION, patient_ssin=ssin, author_nihdi=checked.requester_nihdi
        )
        # consent.policy._author_creates: writing a prescription depends on who writes it, not on
        # the patient's consent or relationships (RX-9), so no facts are loaded on this hot path.
        decision = await guard.decide(
            guard.request(Action.CREATE, target), ssin, PatientFacts(ssin or NO_PATIENT)
        )
        event = Event("create", RESOURCE, patient_ssin=ssin)
        if not decision.permit:
            guard.refuse(decision, event)

        if if_none_exist is not None:
            existing = await self.existing(if_none_exist, caller)
            if existing is not None:
                return Created(existing, created=False)

        async with guard.access(decision, event):
            created = await self._insert(checked, if_none_exist, caller)
            event.resource_id = created.stored.logical_id
        return created

    async def _insert(
        self, checked: ValidatedPrescription, condition: str | None, caller: Principal
    ) -> Created:
        for _ in range(_RID_ATTEMPTS):
            rid = new_rid()
            resource = dict(checked.resource)
            # RX-5: the gateway assigns the RID; the profile refused any RID the client sent.
            resource["identifier"] = [
                *resource.get("identifier", []),
                {"system": systems.RID, "value": rid},
            ]
            columns = search_columns(resource, checked)
            try:
                return Created(await self.store.create(RESOURCE, resource, columns), created=True)
            except IdentifierTaken:
                if condition is not None:
                    # A concurrent retry with the same identifier won the race (the unique
                    # identifier index is what makes two identical retries end with one resource):
                    # its result is the answer.
                    existing = await self.existing(condition, caller)
                    if existing is not None:
                        return Created(existing, created=False)
                if await self._client_identifier_taken(checked):
                    raise
        raise RuntimeError(
            "could not draw an unused RID"
        )  # pragma: no cover - 5 collisions in a row

    async def _client_identifier_taken(self, checked: ValidatedPrescription) -> bool:
        for pair in identifiers_of(checked.resource):
            if (await self.store.search(RESOURCE, Criteria(identifier=pair), count=0)).total:
                return True
        return False

    # -- read (the shared path: gateway.access.service) -------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        return describe.resource_of(stored, resource, ssin, self.info.now)

    def reported(self, stored: StoredVersion, resource: dict[str, Any]) -> StoredVersion:
        return describe.as_reported(stored, self.info.now, resource)  # RX-7: expired: stopped

    async def search(self, params: QueryParams, caller: Principal) -> Page:
        return await search_prescriptions(self.store, self.settings, self.guard(caller), params)

    # -- $set-visibility (RX-13, RX-14) -----------------------------------------------------------

    async def set_visibility(
        self, logical_id: str, body: dict[str, Any], caller: Principal, *, if_match: str | None
    ) -> StoredVersion:
        change = parse_change(body)
        expected = if_match_version(if_match)
        guard = self.guard(caller)
        target = await self.load(logical_id)
        stored, ssin = target.stored, target.ssin
        decision = await self.decide(
            guard, Action.SET_VISIBILITY, target, visibility=change.requested
        )
        event = Event("operation", RESOURCE, logical_id, ssin, query="$set-visibility")
        async with guard.access(decision, event):
            chosen = change.applied_to(target.described.visibility)
            updated = describe.with_extension(
                target.resource, describe.visibility_extension(chosen)
            )
            columns = replace(
                stored.columns,
                patient_ssin=ssin,
                pharmacy_visibility=chosen.pharmacies.value,
                visible_pharmacy=chosen.pharmacy,
                prescriber_visibility=chosen.prescribers.value,
            )
            return await self.store.update(
                RESOURCE,
                logical_id,
                updated,
                columns,
                expected_version=expected if expected is not None else stored.version_id,
                same_identifiers=True,  # only the visibility changes
            )

    # -- $set-feedback (RX-8) ----------------------------------------------------------------------

    async def set_feedback(
        self, logical_id: str, body: dict[str, Any], caller: Principal, *, if_match: str | None
    ) -> StoredVersion:
        """The author's feedback flag: a new version carrying the choice as an extension."""
        allowed = allowed_of(body)
        expected = if_match_version(if_match)
        guard = self.guard(caller)
        target = await self.load(logical_id)
        decision = await self.decide(guard, Action.SET_FEEDBACK, target)
        event = Event("operation", RESOURCE, logical_id, target.ssin, query=SET_FEEDBACK)
        async with guard.access(decision, event):
            stored = target.stored
            return await self.store.update(
                RESOURCE,
                logical_id,
                describe.with_extension(target.resource, flag_extension(allowed)),
                replace(stored.columns, patient_ssin=target.ssin),
                expected_version=expected if expected is not None else stored.version_id,
                same_identifiers=True,  # only the flag changes
            )

    # -- lifecycle operations (RX-7, RX-15; docs/architecture.md 6) ------------------------------------------

    async def change_state(
        self,
        logical_id: str,
        step: Step,
        body: dict[str, Any],
        caller: Principal,
        *,
        if_match: str | None,
    ) -> StoredVersion:
        """One step of the state machine: decide who may, check that the state allows it (409),
        write the new version with compare-and-set (``If-Match``: 412 when stale) and audit."""
        op = OPERATIONS[step]
        expected = if_match_version(if_match)
        given = parameters.read(body, op.name, op.names, required=op.required)
        guard = self.guard(caller)
        current = await transitions.load(self.store, logical_id, guard.now)
        audit = Event("operation", RESOURCE, logical_id, current.ssin, query=op.name)
        action = action_for(op, caller.role)
        if action is None:
            guard.refuse(Decision(False, Reason.WRONG_ROLE), audit)
        rid = _rid(given["rid"]) if "rid" in given else None
        request = guard.request(action, current.described, path=ByRid(rid) if rid else None)
        decision = await guard.decide(request, current.ssin)
        async with guard.access(decision, audit):
            # The pharmacy acting; for a reservation, the pharmacy the patient chose (RX-15).
            by = caller.nihdi if action is Action.DISPENSE else None
            if step is Step.RESERVE:
                by = parameters.organisation_nihdi(given["pharmacy"], "pharmacy")
                if excludes_pharmacy(await guard.facts(current.ssin), by):
                    guard.refuse_change(
                        "excluded",
                        audit,
                        "this is a pharmacy the patient excluded: lift the exclusion to reserve "
                        "there (CO-10)",
                        expression=parameters.path("pharmacy"),
                    )
            outcome = transitions.check(guard, current, step, by=by, audit=audit)
            return await transitions.write(
                guard,
                current,
                outcome,
                audit=audit,
                expected_version=expected,
                status_reason=(
                    parameters.reason(given["reason"]) if "reason" in given else op.status_reason
                ),
                reservation=step is Step.RESERVE,
            )


def _rid(parameter: dict[str, Any]) -> str:
    """The RID a pharmacy holds (RX-17.1): ``valueString``, or an Identifier of the RID system."""
    identifier = parameter.get("valueIdentifier")
    value = (
        identifier.get("value") if isinstance(identifier, dict) else parameter.get("valueString")
    )
    rid = normalise_rid(value) if isinstance(value, str) else None
    if rid is None:
        raise BadRequest(
            "rid: BEP followed by 9 letters or digits", expression=parameters.path("rid")
        )
    return rid
