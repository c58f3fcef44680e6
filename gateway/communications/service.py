"""Feedback on prescriptions (domain RX-8): send, read, history, search.

A pharmacy posts a ``Communication`` about one prescription (``fhir_profiles.feedback`` checks
what it wrote). The gateway finds the prescription (by reference, by RID, or both), describes the
feedback for ``consent.decide`` with that prescription inside it, and on a permit stores it with
the parts it owns: ``sender`` the calling pharmacy (its certificate's NIHDI), ``recipient`` the
prescription's author, ``subject`` the prescription's patient (ID-21: copied, never taken from
the body), ``sent`` the gateway's clock, ``about`` the prescription by reference and RID.

Search columns: ``author_nihdi`` the sending pharmacy, ``actor_nihdi`` the author it went to,
``based_on`` the prescription, ``authored_on`` when it was sent. A search shows the caller's own
correspondence only (``consent.policy._on_feedback``): the pharmacy what it sent, the author what
he received, under any of his competence codes (ID-7).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from starlette.datastructures import QueryParams

from consent import Action, ByRid, PatientFacts, Resource, ResourceKind
from fhir_profiles import systems
from fhir_profiles.feedback import RESOURCE, ValidatedFeedback, accepts_feedback, validate_feedback
from fhir_profiles.issues import Issue
from fhir_profiles.patients import patient_ssin_of
from gateway.access.guard import NO_PATIENT, Event
from gateway.access.service import GuardedService, Target
from gateway.audit.writer import safe_query
from gateway.auth.identity import Principal
from gateway.errors import BadRequest, Gone, NotFound, ProfileViolation
from gateway.fhir import references, search
from gateway.prescriptions import transitions
from gateway.prescriptions.searching import RESOURCE as PRESCRIPTION
from gateway.storage.persons import SamePerson
from gateway.storage.store import Criteria, Page, SearchColumns, StoredVersion

__all__ = ["RESOURCE", "SEARCH_PARAMS", "FeedbackService"]

SEARCH_PARAMS: Final = ("about", "sent")
SORTS: Final = {"sent": "authored"}  # _sort keys besides _lastUpdated
_ABOUT: Final = "Communication.about[0]"


def _no_such_prescription() -> ProfileViolation:
    message = "no prescription matches this reference or RID"
    return ProfileViolation([Issue("not-found", _ABOUT, message, "RX-8")])


class FeedbackService(GuardedService):
    RESOURCE = RESOURCE

    # -- send (RX-8 createFeedback) --------------------------------------------------------------

    async def create(self, body: dict[str, Any], caller: Principal) -> StoredVersion:
        checked = validate_feedback(body)
        if isinstance(checked, list):
            raise ProfileViolation(checked)
        guard = self.guard(caller)
        prescription = await self._prescription(checked)
        stored = prescription.stored
        feedback = Resource(
            ResourceKind.FEEDBACK,
            patient_ssin=prescription.ssin,
            author_nihdi=caller.nihdi,
            provider_nihdi=stored.author_nihdi,
            about=replace(
                prescription.described,
                held_by=stored.columns.holder_nihdi,
                accepts_feedback=accepts_feedback(prescription.resource),
            ),
        )
        # RX-17.1: the RID in ``about`` is the proof the pharmacy holds, decided as a fetch by RID.
        path = ByRid(checked.rid) if checked.rid else None
        decision = await guard.decide(
            guard.request(Action.CREATE, feedback, path=path), prescription.ssin
        )
        event = Event("create", RESOURCE, patient_ssin=prescription.ssin)
        async with guard.access(decision, event):
            created = await self.store.create(
                RESOURCE,
                self._as_sent(checked, prescription, caller),
                SearchColumns(
                    patient_ssin=prescription.ssin,
                    status="completed",
                    authored_on=self.info.now,
                    author_nihdi=caller.nihdi,
                    actor_nihdi=stored.author_nihdi,
                    based_on=stored.logical_id,
                ),
            )
            event.resource_id = created.logical_id
        return created

    async def _prescription(self, checked: ValidatedFeedback) -> Target:
        """The prescription ``about`` names: by reference (any form of this server's), by RID, or
        both, which must then agree (RX-17.1); 422 naming ``about`` when none matches."""
        if checked.reference is not None:
            path = f"{_ABOUT}.reference"
            try:
                logical_id = references.reference_id(
                    checked.reference, path, PRESCRIPTION, self.info.base
                )
            except BadRequest as exc:
                message = "the reference must be MedicationRequest/{id} of this server"
                raise ProfileViolation([Issue("value", path, message, "RX-8")]) from exc
            try:
                found = await transitions.load(self.store, logical_id, self.info.now)
            except (NotFound, Gone) as exc:
                raise _no_such_prescription() from exc
            if checked.rid is not None and checked.rid != (found.described.rid or "").upper():
                message = "the RID is not the referenced prescription's RID"
                raise ProfileViolation([Issue("value", f"{_ABOUT}.identifier", message, "RX-17")])
            return found
        assert checked.rid is not None  # the profile wants a reference or a RID
        criteria = Criteria(identifier=(systems.RID, checked.rid))
        page = await self.store.search(PRESCRIPTION, criteria, count=1)
        if not page.items:
            raise _no_such_prescription()
        return transitions.current(page.items[0], self.info.now)

    def _as_sent(
        self, checked: ValidatedFeedback, prescription: Target, caller: Principal
    ) -> dict[str, Any]:
        resource = dict(checked.resource)
        link: dict[str, Any] = {"reference": f"{PRESCRIPTION}/{prescription.stored.logical_id}"}
        if prescription.described.rid:
            link["identifier"] = {"system": systems.RID, "value": prescription.described.rid}
        resource["about"] = [link]
        resource["subject"] = prescription.resource.get("subject")
        resource["sender"] = {
            "identifier": {"system": systems.NIHDI_ORGANIZATION, "value": caller.nihdi}
        }
        resource["recipient"] = [
            {
                "identifier": {
                    "system": systems.NIHDI_PROFESSIONAL,
                    "value": prescription.stored.author_nihdi,
                }
            }
        ]
        resource["sent"] = self.info.now.isoformat(timespec="seconds")
        return resource

    # -- read and search -------------------------------------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        return Resource(
            ResourceKind.FEEDBACK,
            id=stored.logical_id,
            patient_ssin=ssin,
            author_nihdi=stored.author_nihdi,
            provider_nihdi=stored.columns.actor_nihdi,
        )

    def facts(self, ssin: str | None) -> PatientFacts | None:
        # Reading one's own feedback depends on who sent or received it, not on the patient's
        # consent or relationships (consent.policy._on_feedback): nothing to load.
        return PatientFacts(ssin or NO_PATIENT)

    async def search(self, params: QueryParams, caller: Principal) -> Page:
        """``about`` (the prescription, in any reference form) and ``sent`` (dates with
        prefixes); the caller's own feedback only, narrowed in SQL before counting."""
        search.check_known(params, SEARCH_PARAMS)
        paging = search.paging(
            params, self.settings.default_page_size, self.settings.max_page_size, SORTS
        )
        sent = search.date_ranges(params.getlist("sent"), "sent")
        about = search.single(params, "about")
        prescription_id = (
            references.reference_id(about, "about", PRESCRIPTION, self.info.base)
            if about is not None
            else None
        )
        guard = self.guard(caller)
        ssin = await self._patient_of(prescription_id)
        event = Event("search", RESOURCE, patient_ssin=ssin, query=safe_query(params.multi_items()))
        request = guard.request(Action.SEARCH, ResourceKind.FEEDBACK)
        decision = await guard.decide(request, ssin, self.facts(ssin))
        criteria = replace(_own(caller), authored=sent, based_on=prescription_id)
        async with guard.access(decision, event):
            return await self.store.page(RESOURCE, search.narrow(criteria, params), paging)

    async def _patient_of(self, prescription_id: str | None) -> str | None:
        """The patient a search by ``about`` concerns, for its audit event (none if unknown)."""
        if prescription_id is None:
            return None
        try:
            stored = await self.store.read(PRESCRIPTION, prescription_id)
        except (NotFound, Gone):
            return None
        return patient_ssin_of(stored.json())


def _own(caller: Principal) -> Criteria:
    """The rows ``permit-author`` leaves a feedback search: what the pharmacy sent, or what the
    prescriber received under any of his competence codes (ID-7)."""
    if caller.role == "pharmacist":
        return Criteria(author_nihdi=caller.nihdi or "")
    return Criteria(actor_nihdi=SamePerson(caller.nihdi or ""))
