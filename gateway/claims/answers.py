"""Storing what the funds say: one ClaimResponse per claim, moved forward, never doubled.

The forwarder (an answer to a submission or a cancellation) and the settlement poller (a feed
event) both land here, in their own transaction. Each change starts by locking the claim's row
(``records.ClaimRecords.get(lock=True)``), so answers for one claim are applied one after the other
whichever worker or poller brings them. The first answer creates the ClaimResponse, whose identifier
token ``urn:ehealth-gateway:claim|<claim id>`` is unique: a second ClaimResponse for the same claim
cannot exist. Later events update it (a new version) only when they move it forward
(acknowledged or refused, then settled, then cancelled: ``model.RANK``), so a replayed
acknowledgement or a feed page read twice changes nothing.

A claim may name its patient by the fund's membership number only (hl7-be/eattestation ex11); the
fund's answer names him by SSIN (as ex12 does). From that answer on, the Claim's next version names
him by that SSIN too, the number it named him by kept on its contained Patient, so the Claim and
its ClaimResponse are his: he reads them, finds them among his own, and no one else's rule applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fhir_profiles import systems
from fhir_profiles.patients import patient_ssin_of
from gateway.access.guard import Clock
from gateway.claims.funds import FundClient
from gateway.claims.model import (
    CLAIM,
    CLAIM_RESPONSE,
    RANK,
    STATE_OF,
    FundEvent,
    JobKind,
    State,
    attestation_number,
    event_of,
    request_key_system,
    with_state,
)
from gateway.claims.outbox import Outbox
from gateway.claims.records import ClaimRecords
from gateway.claims.resources import claim_columns, response_columns, response_resource
from gateway.settings import Settings
from gateway.storage.crypto import Keyring
from gateway.storage.store import ResourceStore, StoredVersion

log = structlog.get_logger("gateway.claims")


@dataclass(frozen=True)
class Applied:
    stored: bool  # False: the answer was already there, or older than what is there
    state: State | None = None


def answer_event(answer: dict[str, Any]) -> FundEvent:
    """The event an answer stands for: its fund tag, else its outcome (a refusal is an error)."""
    event = event_of(answer)
    if event is not None:
        return event
    return FundEvent.REJECTED if answer.get("outcome") == "error" else FundEvent.ACKNOWLEDGED


@dataclass(eq=False)
class FundWork:
    """What the forwarder and the settlement poller both work with: the database, the keys, the
    funds' wire and one clock (``worker.ClaimWorker`` gives both the same ones)."""

    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    settings: Settings
    funds: FundClient
    # the app's (``app.state.clock``) or the worker process's: one source of now
    clock: Clock = field(kw_only=True)

    def __post_init__(self) -> None:
        """A subclass sets up its own state here (the generated ``__init__`` calls it)."""


class Answers:
    def __init__(self, session: AsyncSession, keyring: Keyring) -> None:
        self.store = ResourceStore(session, keyring)
        self.records = ClaimRecords(session)
        self.outbox = Outbox(session)

    async def apply(self, claim_id: str, answer: dict[str, Any], now: datetime) -> Applied:
        """Store the fund's ``answer`` (a ClaimResponse) for the claim, if it moves it forward."""
        row = await self.records.get(claim_id, lock=True)
        if row is None:
            return Applied(False)
        event = answer_event(answer)
        current = (
            await self.store.read(CLAIM_RESPONSE, row.response_id) if row.response_id else None
        )
        if current is not None:
            known = answer_event(current.json())
            if RANK[event] <= RANK[known]:
                return Applied(False, row.state)
        claim = await self.store.read(CLAIM, claim_id)
        state = STATE_OF[event]
        resource = response_resource(answer, claim_id)
        columns = response_columns(resource, claim, state)
        patient = columns.patient_ssin or patient_ssin_of(resource)
        columns = replace(columns, patient_ssin=patient)
        if current is None:
            stored = await self.store.create(CLAIM_RESPONSE, resource, columns)
        else:
            stored = await self.store.update(
                CLAIM_RESPONSE,
                current.logical_id,
                resource,
                columns,
                expected_version=current.version_id,
            )
        await self.set_claim_state(claim, state, patient_ssin=patient)
        await self.records.set_state(
            claim_id,
            state,
            now=now,
            attestation=attestation_number(answer),
            response_id=stored.logical_id,
        )
        # However it arrived (the submission's answer, or the feed ahead of it), the submission
        # needs no further attempt.
        await self.outbox.close(claim_id, JobKind.SUBMIT, event.value, now)
        log.info(
            "claim_answer_stored", claim_id=claim_id, fund_event=event.value, state=state.value
        )
        return Applied(True, state)

    async def set_claim_state(
        self,
        claim: StoredVersion,
        state: State,
        reason: str | None = None,
        *,
        patient_ssin: str | None = None,
    ) -> StoredVersion:
        """A new version of the Claim with its claim-state tag (and ``status`` when cancelled),
        naming its patient by ``patient_ssin`` when it names him by no SSIN of its own.

        Callers hold the claim's row lock, so the version read is the current one; the store's
        compare-and-set on the version still guards against a writer that skipped the lock.
        """
        body = claim.json()
        if patient_ssin is not None and patient_ssin_of(body) is None:
            body = named_by_ssin(body, patient_ssin)
        resource = with_state(body, state, reason)
        if state is State.CANCELLED:
            resource["status"] = "cancelled"
        system = request_key_system(claim.author_nihdi or "")
        columns = claim_columns(resource, state, system)
        return await self.store.update(
            CLAIM, claim.logical_id, resource, columns, expected_version=claim.version_id
        )

    async def mark(
        self, claim_id: str, state: State, now: datetime, reason: str | None = None
    ) -> None:
        """The gateway's own news about a claim: failed (not delivered), or queued again."""
        claim = await self.store.read(CLAIM, claim_id)
        await self.set_claim_state(claim, state, reason)
        await self.records.set_state(claim_id, state, now=now)


def named_by_ssin(claim: dict[str, Any], ssin: str) -> dict[str, Any]:
    """``claim`` naming its patient by ``ssin``; the identifier it named him by (a membership
    number) stays on its contained Patient (added when the claim had none), beside the SSIN."""
    patient = dict(claim.get("patient") or {})
    by_ssin = {"system": systems.SSIN, "value": ssin}
    contained = [dict(r) for r in claim.get("contained") or [] if isinstance(r, dict)]
    reference = patient.get("reference")
    found = [
        r
        for r in contained
        if r.get("resourceType") == "Patient" and reference == f"#{r.get('id')}"
    ]
    if found:
        person = found[0]
    else:
        named = patient.get("identifier")
        person = {"resourceType": "Patient", "id": "patient", "identifier": [named]}
        contained.append(person)
        patient["reference"] = "#patient"
    identifiers = [i for i in person.get("identifier") or [] if isinstance(i, dict)]
    person["identifier"] = [*identifiers, by_ssin] if by_ssin not in identifiers else identifiers
    patient["identifier"] = by_ssin
    return {**claim, "contained": contained, "patient": patient}
