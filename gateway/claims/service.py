"""eAttest claims: intake, cancel, reads and searches of Claim and ClaimResponse (AT-1..AT-7).

Intake validates (``fhir_profiles.claim``), then in the request's one transaction stores the Claim,
its bookkeeping row and its outbox job: the claim exists if and only if its delivery is queued.
It is idempotent on the provider's request key (AT-7): the ``Idempotency-Key`` header, else the
Claim's own identifier. A second attestation of the same service within the duplicate window
needs the provider's explicit override. Delivery is the forwarder's (``gateway.claims.forwarder``).

Who may do what is ``consent.decide`` (``consent.policy._on_claim``: the provider who sent the
claim, the patient it is about; CO-9: no consent or relationship), asked through the request's
``Guard`` (``gateway.access.guard``), which also writes the AuditEvent: last in the transaction
for a permitted interaction, on its own for a refusal (docs/architecture.md 5, 8). "Now" is the
request's clock (``app.state.clock``). The service never builds HTTP responses: routes do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.datastructures import QueryParams

from consent import Action, Decision, PatientFacts, Reason, Resource, ResourceKind
from fhir_profiles.claim import ValidatedClaim, validate_cancel, validate_claim
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import ATTESTATION
from fhir_profiles.rules.claim_items import Service
from gateway.access.guard import NO_PATIENT, Event, Guard, RequestInfo
from gateway.access.service import GuardedService
from gateway.audit.writer import safe_query
from gateway.auth.identity import Principal
from gateway.claims.funds import route
from gateway.claims.model import (
    CLAIM,
    CLAIM_LINK,
    CLAIM_RESPONSE,
    JobKind,
    State,
    request_key_system,
    with_state,
)
from gateway.claims.outbox import Outbox
from gateway.claims.records import ClaimRecords
from gateway.claims.resources import claim_columns
from gateway.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PreconditionFailed,
    ProfileViolation,
)
from gateway.fhir import references, search
from gateway.fhir.preconditions import if_match_version
from gateway.settings import Settings
from gateway.storage.persons import provider_match
from gateway.storage.store import (
    Criteria,
    IdentifierTaken,
    Page,
    ResourceStore,
    StoredVersion,
)

CLAIM_SEARCH_PARAMS = ("patient:identifier", "state")
RESPONSE_SEARCH_PARAMS = ("request", "patient:identifier", "identifier", "state")
_KEY_MAX = 255
_VOLATILE = frozenset({"id", "meta", "text", "created"})


@dataclass(frozen=True)
class WriteResult:
    """A claim created or cancelled, or the earlier answer to the same request (AT-7)."""

    stored: StoredVersion
    replayed: bool = False  # AT-7: the answer to an earlier request with the same key


class KeyReused(Conflict):
    """AT-7: the provider used a request key before, for a different claim."""

    def __init__(self, expression: str) -> None:
        super().__init__(
            "IDEMPOTENCY_KEY_REUSED: this request key was used before for a different claim",
            expression=expression,
        )

    def issues(self) -> list[Issue]:
        return [Issue("conflict", self.expression or "", self.message, "AT-7")]


class PossibleDuplicate(Conflict):
    """AT-7: a second attestation of the same service (patient, date, code, count) within the
    window: a warning (409) until the provider overrides it with the duplicate-override extension.
    """

    def __init__(self, matches: list[tuple[int, str]], hours: float) -> None:
        super().__init__("POSSIBLE_DUPLICATE")
        self.matches = matches  # (item index, the earlier claim's id)
        self.hours = hours

    def issues(self) -> list[Issue]:
        hours = f"{self.hours:g}"
        return [
            Issue(
                "duplicate",
                f"Claim.item[{index}]",
                f"POSSIBLE_DUPLICATE: Claim/{claim_id} attested the same service (patient, date, "
                f"code, count) less than {hours} hours ago; to send it anyway, add the extension "
                "urn:ehealth-gateway:extension:duplicate-override with valueBoolean true",
                "AT-7",
                severity="warning",
            )
            for index, claim_id in self.matches
        ]


def content_fingerprint(store: ResourceStore, resource: dict[str, Any]) -> str:
    """A keyed hash of what the claim says: the same key with other content is another claim.

    ``created`` is left out, as ``id``, ``meta`` and ``text``: software that rebuilds the claim for
    a retry stamps it anew (the funds compare the same way). Keyed: the content holds an SSIN."""
    content = {k: v for k, v in resource.items() if k not in _VOLATILE}
    return store.keyring.search_hash(
        "claim-content", orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    )


def service_hash(store: ResourceStore, provider: str, patient: str, service: Service) -> str:
    """AT-7: what makes two attestations "the same service", as a keyed hash (no SSIN at rest).
    ``patient`` is the SSIN, or the fund and membership number of a patient named by those."""
    text = f"{provider}|{patient}|{service.serviced.isoformat()}|{service.code}|{service.count}"
    return store.keyring.search_hash("claim-service", text)


def request_key(checked: ValidatedClaim, header: str | None) -> tuple[str, str]:
    """AT-7: (key, where it came from). The header wins; else the provider's own identifier."""
    if header is not None:
        key = header.strip()
        if not key or len(key) > _KEY_MAX or not key.isascii() or not key.isprintable():
            raise BadRequest(
                "Idempotency-Key: 1 to 255 printable ASCII characters", expression="Idempotency-Key"
            )
        return key, "Idempotency-Key"
    for index, identifier in enumerate(checked.resource.get("identifier") or []):
        system, value = identifier.get("system"), identifier.get("value")
        own = isinstance(system, str) and system != ATTESTATION
        if (
            own
            and isinstance(value, str)
            and value
            and not system.startswith("urn:ehealth-gateway:")
        ):
            return f"{system}|{value}", f"Claim.identifier[{index}]"
    raise ProfileViolation(
        [
            Issue(
                "required",
                "Claim.identifier",
                "a request key is required: an Idempotency-Key header, or a Claim.identifier "
                "from your own system (system and value)",
                "AT-7",
            )
        ]
    )


class ClaimService(GuardedService):
    RESOURCE = CLAIM

    def __init__(self, store: ResourceStore, settings: Settings, info: RequestInfo) -> None:
        super().__init__(store, settings, info)
        self.records = ClaimRecords(store.session)
        self.outbox = Outbox(store.session)

    async def _decide(
        self, guard: Guard, action: Action, target: Resource | ResourceKind, ssin: str | None
    ) -> Decision:
        """``consent.decide`` on a claim not stored yet, or on a search of claims."""
        return await guard.decide(guard.request(action, target), ssin, self.facts(ssin))

    # -- intake ----------------------------------------------------------------------------------

    async def create(
        self,
        body: dict[str, Any],
        caller: Principal,
        *,
        idempotency_key: str | None,
        message: bool = False,
    ) -> WriteResult:
        """``message``: the claim came in an eAttest request message (``messages_intake``), whose
        Bundle id is ``idempotency_key`` (AT-7) and whose profile adds its own invariants."""
        guard = self.guard(caller)
        now = guard.now
        checked = validate_claim(
            body, now=now, nihdi_check_digit=self.settings.nihdi_check_digit, message=message
        )
        if isinstance(checked, list):
            raise ProfileViolation(checked)
        ssin = checked.patient_ssin
        target = Resource(
            ResourceKind.CLAIM, patient_ssin=ssin, author_nihdi=checked.provider_nihdi
        )
        decision = await self._decide(guard, Action.CREATE, target, ssin)
        event = Event("create", CLAIM, patient_ssin=ssin)
        if not decision.permit:
            guard.refuse(decision, event)  # not-author: a provider sends in his own name only
        fund = route(self.settings.mutuality_urls, checked.fund_code)
        if fund is None:
            unreachable = "no sickness fund with this code (or its union's) is reachable from here"
            raise ProfileViolation(
                [Issue("not-supported", "Claim.insurer.identifier.value", unreachable, "ID-13")]
            )
        if message and idempotency_key is not None:
            key, key_source = idempotency_key, "Bundle.id"
        else:
            key, key_source = request_key(checked, idempotency_key)
        system = request_key_system(checked.provider_nihdi)
        key_hash = self.store.identifier_hash(system, key)
        fingerprint = content_fingerprint(self.store, checked.resource)

        async with guard.access(decision, event):  # audited once it is stored (or replayed)
            # Concurrent intakes for one provider and patient take turns from here on, so a
            # request with the same key that committed meanwhile is seen: a replay, not a duplicate.
            pair = self.store.keyring.search_hash(
                "claim-pair", f"{checked.provider_nihdi}|{checked.patient_key}"
            )
            await self.records.serialise_services(pair)
            replay = await self._replay(key_hash, fingerprint, key_source)
            if replay is not None:
                event.resource_id = replay.logical_id
                return WriteResult(replay, replayed=True)

            hashes = [
                service_hash(self.store, checked.provider_nihdi, checked.patient_key, s)
                for s in checked.services
            ]
            if not checked.duplicate_override:
                await self._check_duplicates(hashes, now)

            resource = dict(checked.resource)
            resource["identifier"] = [
                *resource.get("identifier", []),
                {"system": system, "value": key},
            ]
            resource = with_state(resource, State.QUEUED)
            try:
                stored = await self.store.create(
                    CLAIM, resource, claim_columns(resource, State.QUEUED, system)
                )
            except IdentifierTaken:
                # A request with the same key committed meanwhile (it names another patient, so
                # it did not wait for our lock): a replay if it is the same claim, else a reused key.
                replay = await self._replay(key_hash, fingerprint, key_source)
                if replay is None:
                    raise
                event.resource_id = replay.logical_id
                return WriteResult(replay, replayed=True)
            event.resource_id = stored.logical_id
            await self.records.insert(
                stored.logical_id,
                provider_nihdi=checked.provider_nihdi,
                request_key=key_hash,
                fund_code=checked.fund_code,
                fingerprint=fingerprint,
                now=now,
            )
            await self.records.add_services(stored.logical_id, hashes, now)
            await self.outbox.enqueue(stored.logical_id, JobKind.SUBMIT, fund, now, fresh=True)
            return WriteResult(stored)

    async def _replay(
        self, key_hash: str, fingerprint: str, key_source: str
    ) -> StoredVersion | None:
        """The claim stored earlier under this request key, if any (AT-7); a key used for other
        content is refused."""
        row = await self.records.by_request_key(key_hash)
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise KeyReused(key_source)
        return await self.store.read(CLAIM, row.claim_id)

    async def _check_duplicates(self, hashes: list[str], now: datetime) -> None:
        window = timedelta(hours=self.settings.claim_duplicate_window_hours)
        if window <= timedelta(0):
            return
        earlier = await self.records.recent_services(hashes, now - window)
        matches = [(i, earlier[h]) for i, h in enumerate(hashes) if h in earlier]
        if matches:
            raise PossibleDuplicate(matches, self.settings.claim_duplicate_window_hours)

    # -- cancel (AT-6) ---------------------------------------------------------------------------

    async def cancel(
        self,
        logical_id: str,
        body: dict[str, Any],
        caller: Principal,
        *,
        if_match: str | None = None,
    ) -> WriteResult:
        """Queue the cancellation of an acknowledged attestation; cancelling twice answers as the
        first time (AT-7). The fund's confirmation arrives as the ClaimResponse's next version.
        ``If-Match`` names the Claim's version the client saw (412 if it has moved on since)."""
        reason = validate_cancel(body)
        if isinstance(reason, list):
            raise ProfileViolation(reason)
        expected = if_match_version(if_match)
        guard = self.guard(caller)
        row = await self.records.get(logical_id, lock=True)
        target = await self.load(logical_id)
        stored = target.stored
        decision = await self.decide(guard, Action.UPDATE, target)
        event = Event("operation", CLAIM, logical_id, target.ssin)
        async with guard.access(decision, event):  # the author only (not-author)
            if expected is not None and expected != stored.version_id:
                raise PreconditionFailed(
                    f"If-Match names version {expected}; the Claim is at {stored.version_id}"
                )
            if await self.outbox.find(logical_id, JobKind.CANCEL) is not None:
                return WriteResult(stored, replayed=True)
            if row is not None and row.state is State.REFUSED:
                raise Conflict(
                    "not-attested: the fund refused this claim; there is nothing to cancel"
                )
            if row is None or row.state in (State.QUEUED, State.FAILED) or row.attestation is None:
                raise Conflict(
                    "not-acknowledged: an attestation can be cancelled once its fund has "
                    "acknowledged it"
                )
            submission = await self.outbox.find(logical_id, JobKind.SUBMIT)
            fund = submission.fund_code if submission is not None else row.fund_code
            await self.outbox.enqueue(
                logical_id, JobKind.CANCEL, fund, guard.now, cancel_reason=reason
            )
            return WriteResult(stored)

    async def cancel_attested(self, number: str, reason: str, caller: Principal) -> WriteResult:
        """AT-6 as an ``eattest-cancel`` message names it: by its attestation number, among the
        caller's own claims (another provider's number is not found, as on a search), then the
        same cancellation as ``Claim/{id}/$cancel``."""
        criteria = Criteria(
            identifier=(ATTESTATION, number),
            author_nihdi=provider_match(caller.role, caller.nihdi or ""),
        )
        page = await self.store.search(CLAIM_RESPONSE, criteria, count=1, with_total=False)
        claim_id = None
        for found in page.items:
            for identifier in found.json().get("identifier") or []:
                if isinstance(identifier, dict) and identifier.get("system") == CLAIM_LINK:
                    claim_id = identifier.get("value")
        if not isinstance(claim_id, str):
            raise NotFound("no attestation of yours has this number")
        parameters = {
            "resourceType": "Parameters",
            "parameter": [{"name": "reason", "valueCode": reason}],
        }
        return await self.cancel(claim_id, parameters, caller)

    # -- reads -----------------------------------------------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        """A Claim's or ClaimResponse's provider (the ``author_nihdi`` column; a ClaimResponse
        carries its Claim's) and patient."""
        return Resource(
            ResourceKind.CLAIM,
            id=stored.logical_id,
            patient_ssin=ssin,
            author_nihdi=stored.author_nihdi,
        )

    def facts(self, ssin: str | None) -> PatientFacts:
        """CO-9: eAttest needs no consent or therapeutic relationship, and the claim rules read
        none of the patient's facts, so none are loaded: the facts only name the patient (PO-4)."""
        return PatientFacts(ssin or NO_PATIENT)

    async def search(
        self, params: QueryParams, caller: Principal, resource_type: str = CLAIM
    ) -> Page:
        known = CLAIM_SEARCH_PARAMS if resource_type == CLAIM else RESPONSE_SEARCH_PARAMS
        search.check_known(params, known)
        guard = self.guard(caller)
        patient = search.optional(params, "patient:identifier", search.patient_param)
        if patient is None and caller.role == "patient":
            patient = caller.ssin  # PO-4: "my claims"
        criteria = Criteria(
            patient_ssin=patient,
            statuses=_states(params),
            identifier=_response_identifier(params, self.info.base)
            if resource_type == CLAIM_RESPONSE
            else None,
        )
        paging = search.paging(params, self.settings.default_page_size, self.settings.max_page_size)
        event = Event(
            "search", resource_type, patient_ssin=patient, query=safe_query(params.multi_items())
        )
        decision = await self._decide(guard, Action.SEARCH, ResourceKind.CLAIM, patient)
        narrowed = _visible(criteria, decision, caller)
        if narrowed is None:
            decision = Decision(False, Reason.ERROR)  # a permit we cannot narrow: fail closed
        async with guard.access(decision, event):
            assert narrowed is not None
            return await self.store.page(resource_type, search.narrow(narrowed, params), paging)


def _visible(criteria: Criteria, decision: Decision, caller: Principal) -> Criteria | None:
    """A permitted claim search as row conditions, so ``total`` and paging count only what the
    caller may see: ``permit-author`` his own claims (the person under any competence code, ID-7),
    ``permit-patient-self`` the patient's, already the criteria's patient. ``None``: a permit
    this function does not know (the caller fails closed)."""
    if not decision.permit:
        return criteria  # refused before any row is read
    if decision.reason is Reason.PERMIT_AUTHOR and caller.nihdi:
        return replace(criteria, author_nihdi=provider_match(caller.role, caller.nihdi))
    if decision.reason is Reason.PERMIT_PATIENT_SELF and criteria.patient_ssin == caller.ssin:
        return criteria
    return None


def _states(params: QueryParams) -> tuple[str, ...]:
    """``state``: where the claim stands (``model.State``; docs/claims.md)."""
    values: list[str] = []
    for raw in params.getlist("state"):
        values.extend(v for v in raw.split(",") if v)
    known = {state.value for state in State}
    if any(v not in known for v in values):
        raise BadRequest(
            "state: one of " + ", ".join(state.value for state in State), expression="state"
        )
    return tuple(values)


def _response_identifier(params: QueryParams, base: str | None) -> tuple[str, str] | None:
    """``request=`` a Claim (``Claim/{id}``, the id, or this server's URL of it) and ``identifier=<eattest system>|<number>``."""
    request = search.single(params, "request")
    identifier = search.single(params, "identifier")
    if request is not None and identifier is not None:
        raise BadRequest("search by request or by identifier, not both", expression="request")
    if request is not None:
        return CLAIM_LINK, references.reference_id(request, "request", CLAIM, base)
    if identifier is not None:
        system, value = search.token(identifier, "identifier")
        if system not in (None, ATTESTATION):
            raise BadRequest(
                f"identifier: only the attestation number ({ATTESTATION}) is searchable",
                expression="identifier",
            )
        return ATTESTATION, value
    return None
