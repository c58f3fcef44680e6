"""Consent, exclusions, therapeutic relationships and mandates (docs/architecture.md 4c; domain
CO-1..CO-10, RX-16, PO-4).

- Create: the patient (his own; later through the portal) or a provider who proves the patient's
  presence with the eID read in ``verification[0]`` (CO-2). Exclusions are the patient's alone
  (CO-10). A relationship names the provider who registers it (a pharmacy's covers the pharmacy,
  a physician's that physician) and its legal end is filled in by the gateway from its kind
  (CO-6, ``consent.relationship_end``).
- Update: withdrawing consent, lifting an exclusion or ending a relationship is ``status``
  ``inactive`` (a new version; the history stays). Only the status is taken from the body.
- A mandate is given and ended by its mandator (the patient, in his own name); its holder reads
  it and may end it too (RX-16, ``consent.policy._holder_on_mandate``).
- At most one active informed consent per patient (CO-4) and one active exclusion per provider:
  a unique token in ``resource_identifiers`` makes that hold under concurrent requests.

Every decision is ``consent.decide`` through the ``Guard`` (which audits it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from consent import (
    CLOCK_SKEW,
    Action,
    Resource,
    relationship_end,
)
from fhir_profiles import Issue
from fhir_profiles.dates import BRUSSELS
from gateway.access.facts import (
    EXCLUSION,
    INFORMED_CONSENT,
    MANDATE,
    RELATIONSHIP,
    RESOURCE,
    actions_column,
)
from gateway.access.guard import Event
from gateway.access.service import Created, GuardedService
from gateway.auth.identity import Principal
from gateway.consents import shapes
from gateway.consents.searching import described, search_consents
from gateway.errors import BadRequest, Conflict, PreconditionFailed, ProfileViolation
from gateway.fhir.preconditions import if_match_version
from gateway.storage.store import (
    IdentifierTaken,
    Page,
    SearchColumns,
    StoredVersion,
)

# Unique tokens (hashed like every identifier) that keep one active record per key.
ACTIVE_CONSENT = "urn:ehealth-gateway:active-consent"
ACTIVE_EXCLUSION = "urn:ehealth-gateway:active-exclusion"


def _client_identifiers(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(i.get("system", "")), str(i.get("value", "")))
        for i in resource.get("identifier") or ()
        if isinstance(i, dict)
    ]


def columns_of(
    parsed: shapes.ParsedConsent, resource: dict[str, Any], holder_hmac: str | None = None
) -> SearchColumns:
    """The search columns; a mandate's actions go in ``kind`` and a proxy's SSIN, hashed by the
    store, in ``holder_hmac`` (migration 0010)."""
    identifiers = _client_identifiers(resource)
    if parsed.status == "active" and parsed.category == INFORMED_CONSENT:
        identifiers.append((ACTIVE_CONSENT, parsed.patient_ssin))
    if parsed.status == "active" and parsed.category == EXCLUSION:
        identifiers.append((ACTIVE_EXCLUSION, f"{parsed.patient_ssin}|{parsed.actor_nihdi}"))
    start, end = period_of(resource)
    assert start is not None  # parse_consent checked dateTime and filled it in
    kind = parsed.kind.value if parsed.kind else None
    if parsed.category == MANDATE:
        kind = actions_column(parsed.actions)
    return SearchColumns(
        patient_ssin=parsed.patient_ssin,
        status=parsed.status,
        category=parsed.category,
        actor_nihdi=parsed.actor_nihdi,
        holder_hmac=holder_hmac,
        kind=kind,
        period_start=start,
        period_end=end,
        identifiers=identifiers,
    )


def period_of(resource: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """When a Consent counts from and until (CO-4, CO-7): ``provision.period``, the start by default
    its ``dateTime``. The columns the access decision reads; migration 0007 recomputes them with
    this same function."""
    period = (resource.get("provision") or {}).get("period") or {}
    start = shapes.instant(period.get("start")) or shapes.instant(resource.get("dateTime"))
    return start, shapes.instant(period.get("end"))


class ConsentService(GuardedService):
    RESOURCE = RESOURCE

    def _parse(self, body: dict[str, Any]) -> shapes.ParsedConsent:
        parsed = shapes.parse_consent(body, self.info.now)
        if isinstance(parsed, list):
            raise ProfileViolation(parsed)
        return parsed

    # -- create ----------------------------------------------------------------------------------

    async def create(
        self, body: dict[str, Any], caller: Principal, *, if_none_exist: str | None = None
    ) -> Created:
        """A new Consent; with ``if_none_exist`` (FHIR R4 http.html#ccreate), the one the caller
        may see that the condition finds, if any (200), and 412 if it finds several."""
        if if_none_exist is not None:
            self._parse(body)  # a retry is answered only if it would have been valid
            existing = await self.existing(if_none_exist, caller)
            if existing is not None:
                return Created(existing, created=False)
        try:
            return Created(await self._create(body, caller), created=True)
        except Conflict:
            # CO-4, CO-10: a retry racing with its twin lost on the one-active-record token;
            # the winner is the answer when the condition finds it.
            existing = await self.existing(if_none_exist, caller) if if_none_exist else None
            if existing is None:
                raise
            return Created(existing, created=False)

    async def conditional_update(
        self, condition: str, body: dict[str, Any], caller: Principal, *, if_match: str | None
    ) -> Created:
        """FHIR R4 http.html#cond-update: the one match is updated (withdrawn, lifted, ended);
        no match and no id in the body: created; several: 412."""
        found = await self.matches(condition, caller)
        if found:
            logical_id = found[0].logical_id
            if body.get("id") not in (None, logical_id):
                raise BadRequest(
                    "the body's id is not the id of the resource the condition found",
                    expression="Consent.id",
                )
            updated = await self.update(
                logical_id, {**body, "id": logical_id}, caller, if_match=if_match
            )
            return Created(updated, created=False)
        if "id" in body:
            raise BadRequest(
                "the condition found no Consent: send a new one without an id",
                expression="Consent.id",
            )
        return Created(await self._create(body, caller), created=True)

    async def _create(self, body: dict[str, Any], caller: Principal) -> StoredVersion:
        parsed = self._parse(body)
        if parsed.status != "active":
            raise ProfileViolation(
                [Issue("value", "Consent.status", "a new Consent is active", "CO-4")]
            )
        guard = self.guard(caller)
        resource = parsed.resource
        if parsed.category == RELATIONSHIP:
            resource = self._with_legal_period(parsed)
        if parsed.category == MANDATE:
            self._check_mandate_period(resource)
        target = Resource(
            parsed.resource_kind,
            patient_ssin=parsed.patient_ssin,
            provider_nihdi=parsed.actor_nihdi,
            holder_ssin=parsed.holder_ssin,
        )
        decision = await guard.decide(
            guard.request(Action.CREATE, target, path=parsed.presence), parsed.patient_ssin
        )
        event = Event("create", RESOURCE, patient_ssin=parsed.patient_ssin)
        async with guard.access(decision, event):
            stored = await self._insert(parsed, resource)
            event.resource_id = stored.logical_id
        return stored

    def _check_mandate_period(self, resource: dict[str, Any]) -> None:
        """RX-16: a mandate given now runs from its start (default: now) to its end, if any, which
        comes after the start and is not already past."""
        start, end = period_of(resource)
        if end is not None and ((start is not None and end <= start) or end < self.info.now):
            raise ProfileViolation(
                [
                    Issue(
                        "business-rule",
                        "Consent.provision.period.end",
                        "a mandate ends after it starts and has not ended yet",
                        "RX-16",
                    )
                ]
            )

    def _with_legal_period(self, parsed: shapes.ParsedConsent) -> dict[str, Any]:
        """CO-6, CO-7: start = the given start, else the eID read, else now; end = the legal end."""
        now = self.info.now
        start = parsed.period_start or (parsed.presence.read_at if parsed.presence else now)
        assert parsed.kind is not None
        # CO-6: months on the Brussels calendar and clock, whatever offset the start was written in.
        end = relationship_end(parsed.kind, start.astimezone(BRUSSELS))
        if start > now + CLOCK_SKEW or end < now:
            raise ProfileViolation(
                [
                    Issue(
                        "business-rule",
                        "Consent.provision.period.start",
                        "a relationship starts now or in the past and has not ended yet",
                        "CO-7",
                    )
                ]
            )
        resource = dict(parsed.resource)
        provision = dict(resource["provision"])
        provision["period"] = {"start": shapes.fhir_instant(start), "end": shapes.fhir_instant(end)}
        resource["provision"] = provision
        return resource

    async def _insert(
        self, parsed: shapes.ParsedConsent, resource: dict[str, Any]
    ) -> StoredVersion:
        try:
            holder = self.store.ssin_hash(parsed.holder_ssin) if parsed.holder_ssin else None
            return await self.store.create(RESOURCE, resource, columns_of(parsed, resource, holder))
        except IdentifierTaken as exc:
            if parsed.category == INFORMED_CONSENT:
                raise Conflict(
                    "the patient already has an active informed consent (CO-4)",
                    expression="Consent.status",
                ) from exc
            if parsed.category == EXCLUSION:
                raise Conflict(
                    "this provider is already excluded by the patient (CO-10)",
                    expression="Consent.provision.actor",
                ) from exc
            raise

    # -- read ------------------------------------------------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        return described(stored, ssin)

    async def search(self, params: Any, caller: Principal) -> Page:
        return await search_consents(self.store, self.settings, self.guard(caller), params)

    # -- update: withdraw, lift, end ---------------------------------------------------------------

    async def update(
        self, logical_id: str, body: dict[str, Any], caller: Principal, *, if_match: str | None
    ) -> StoredVersion:
        if body.get("id") != logical_id:  # FHIR R4 http.html#update: 400 when missing or different
            raise BadRequest("the body's id must be the id in the URL", expression="Consent.id")
        status = body.get("status")
        if status not in ("active", "inactive"):
            raise ProfileViolation(
                [Issue("value", "Consent.status", "status is active or inactive", "CO-4")]
            )
        expected = if_match_version(if_match)
        # A provider proves the patient's presence with a fresh eID read in the body or headers.
        proof = shapes.parse_presence(body)
        if isinstance(proof, list):
            raise ProfileViolation(proof)  # CO-2: a proof that is sent must be a proof
        presence = proof or self.info.presence
        guard = self.guard(caller)
        target = await self.load(logical_id)
        stored, resource, ssin = target.stored, target.resource, target.ssin
        decision = await self.decide(guard, Action.UPDATE, target, path=presence)
        event = Event("update", RESOURCE, logical_id, ssin)
        async with guard.access(decision, event):
            if expected is not None and expected != stored.version_id:
                # FHIR R4 http.html#concurrency: a stale If-Match is 412 even when nothing changes
                raise PreconditionFailed(
                    f"If-Match names version {expected}; the current version is {stored.version_id}"
                )
            if stored.status == status:
                return stored  # CO-4: withdrawing twice changes nothing
            if status == "active":
                raise Conflict(
                    "an inactive Consent stays inactive: register a new one",
                    expression="Consent.status",
                )
            return await self._deactivate(stored, resource, ssin, expected)

    async def _deactivate(
        self,
        stored: StoredVersion,
        resource: dict[str, Any],
        ssin: str | None,
        expected: int | None,
    ) -> StoredVersion:
        now = self.info.now
        resource["status"] = "inactive"
        resource.pop("meta", None)
        columns = replace(
            stored.columns,
            patient_ssin=ssin,
            status="inactive",
            identifiers=_client_identifiers(resource),  # the active-record token is released
        )
        if stored.columns.category in (RELATIONSHIP, MANDATE):
            # Ended before its (legal) end: the record shows when (CO-7: "not revoked"; RX-16).
            provision = dict(resource.get("provision") or {})
            period = dict(provision.get("period") or {})
            end = shapes.instant(period.get("end"))
            if end is None or now < end:
                period["end"] = shapes.fhir_instant(now)
                provision["period"] = period
                resource["provision"] = provision
                columns = replace(columns, period_end=now)
        return await self.store.update(
            RESOURCE,
            stored.logical_id,
            resource,
            columns,
            expected_version=expected if expected is not None else stored.version_id,
        )
