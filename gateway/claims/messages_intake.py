"""``POST /fhir/$process-message``: an eAttest request message in, the answer message out (AT-1..AT-7).

The message is read and mapped onto the gateway's one Claim shape (``fhir_profiles.eattest_message``),
then runs exactly what ``POST /fhir/Claim`` and ``Claim/{id}/$cancel`` run (``ClaimService``): the
same rules, the same stored Claim, outbox job, duplicate check and request key (AT-7: the Bundle
id, in the provider's namespace). The fund is reached only through the outbox, so delivery stays
exactly once; the request waits up to ``message_wait_seconds`` for the job to finish (waking the
in-process forwarder, if any) and answers:

- ``ok``: the fund's answer (acknowledgement, refusal, cancellation). It is final, so it is stored
  (an encrypted ``Bundle`` resource keyed by the provider and the Bundle id) and a replay of the
  same Bundle gets the same bytes; the same id with other content is a 409;
- ``transient-error`` (503, ``Retry-After``): no answer yet; resending the same Bundle id is safe
  and waits again for the same claim;
- ``fatal-error``: the gateway refused the message (422 profile, 409 key reuse or duplicate, 403,
  404 an unknown attestation number); nothing is stored, and the message says why.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson
from starlette.datastructures import QueryParams

from fhir_profiles._json import items, obj, text
from fhir_profiles.eattest_message import (
    CancelMessage,
    CreateMessage,
    message_path,
    read_message,
)
from fhir_profiles.issues import Issue
from fhir_profiles.rules.claim_codes import (
    EVENT_CANCEL_RESPONSE,
    EVENT_CREATE_RESPONSE,
    EVENT_REJECT,
)
from gateway.auth.identity import Principal
from gateway.claims.messages import ResponseCode, response_message
from gateway.claims.model import CLAIM, CLAIM_RESPONSE, JobKind, JobState
from gateway.claims.service import ClaimService, content_fingerprint
from gateway.errors import Conflict, GatewayError
from gateway.storage.store import Criteria, IdentifierTaken, SearchColumns

ANSWER: Final = "Bundle"  # the stored answers' resource type (never served as a resource)
_POLL_SECONDS: Final = 0.1
_RETRY_AFTER: Final = "5"


def _answer_system(provider: str) -> str:
    return f"urn:ehealth-gateway:message-answer:{provider}"


def _content_system(provider: str) -> str:
    return f"urn:ehealth-gateway:message-content:{provider}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


class MessageIntake:
    def __init__(self, service: ClaimService, caller: Principal, wake: Any = None) -> None:
        self.service = service
        self.caller = caller
        self.provider = caller.nihdi or ""
        self.session = service.store.session
        self.wake = wake  # the in-process forwarder's nudge, if any

    async def process(self, body: Any) -> Answer:
        answers = _request_header_id(body)
        parsed = read_message(body)
        if isinstance(parsed, list):
            return self._refused(answers, 422, parsed)
        answers = parsed.header_id or parsed.bundle_id
        fingerprint = self._fingerprint(parsed)
        try:
            stored = await self._stored(parsed.bundle_id, fingerprint)
            if stored is not None:
                return await self._replayed(stored)
            if isinstance(parsed, CreateMessage):
                written = await self.service.create(
                    parsed.claim, self.caller, idempotency_key=parsed.bundle_id, message=True
                )
                kind, event = JobKind.SUBMIT, EVENT_CREATE_RESPONSE
            else:
                written = await self.service.cancel_attested(
                    parsed.attestation, parsed.reason, self.caller
                )
                kind, event = JobKind.CANCEL, EVENT_CANCEL_RESPONSE
        except GatewayError as error:
            await self.session.rollback()  # nothing of a refused message is kept
            issues = error.issues()
            if isinstance(parsed, CreateMessage):
                issues = [_moved(i, parsed) for i in issues]
            return self._refused(answers, error.status, issues)
        await self.session.commit()  # queued for the fund before anyone waits for it
        claim_id = written.stored.logical_id
        if self.wake is not None:
            self.wake()
        if not await self._finished(claim_id, kind):
            return self._pending(answers, event)
        paths = parsed.paths if isinstance(parsed, CreateMessage) else ()
        return await self._final(parsed.bundle_id, fingerprint, answers, event, claim_id, paths)

    # -- replay ------------------------------------------------------------------------------

    def _fingerprint(self, parsed: CreateMessage | CancelMessage) -> str:
        """What the message says, keyed (it holds an SSIN): a create's Claim as
        ``POST /fhir/Claim`` fingerprints it, a cancel's number and reason."""
        if isinstance(parsed, CreateMessage):
            return "create|" + content_fingerprint(self.service.store, parsed.claim)
        text_ = f"cancel|{parsed.attestation}|{parsed.reason}"
        return self.service.store.keyring.search_hash("message-cancel", text_)

    async def _stored(self, bundle_id: str, fingerprint: str) -> bytes | None:
        """The stored final answer to this Bundle id (AT-7); other content under it is a 409."""
        store = self.service.store
        for system, value in (
            (_content_system(self.provider), f"{bundle_id}|{fingerprint}"),
            (_answer_system(self.provider), bundle_id),
        ):
            page = await store.search(
                ANSWER, Criteria(identifier=(system, value)), count=1, with_total=False
            )
            if page.items and system == _content_system(self.provider):
                return page.items[0].body
            if page.items:
                raise _KeyReused()
        return None

    async def _replayed(self, stored: bytes) -> Answer:
        """The stored answer again, its ClaimResponse read as the provider's audited search,
        as the first answer's was (AT-7: a replay shows what was stored, and is logged)."""
        for entry in orjson.loads(stored).get("entry") or []:
            resource = entry.get("resource") or {}
            reference = (resource.get("request") or {}).get("reference")
            if resource.get("resourceType") == CLAIM_RESPONSE and isinstance(reference, str):
                params = QueryParams({"request": reference})
                await self.service.search(params, self.caller, CLAIM_RESPONSE)
        return Answer(200, stored, {"Idempotent-Replayed": "true"})

    # -- waiting for the fund ----------------------------------------------------------------

    async def _finished(self, claim_id: str, kind: JobKind) -> bool:
        """Whether the claim's job left ``pending`` within the wait; each look is its own short
        transaction, so that the forwarder's commits are seen (SQLite keeps a snapshot)."""
        deadline = time.monotonic() + self.service.settings.message_wait_seconds
        while True:
            job = await self.service.outbox.find(claim_id, kind)
            await self.session.rollback()
            if job is not None and job.state is not JobState.PENDING:
                return True  # done (answered), or failed (parked: the answer tells to resend)
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    async def _final(
        self,
        bundle_id: str,
        fingerprint: str,
        answers: str,
        event: str,
        claim_id: str,
        paths: tuple[tuple[str, str], ...],
    ) -> Answer:
        """The fund's answer as the provider reads it (an audited search of his ClaimResponse),
        stored once as the final answer to this Bundle id."""
        params = QueryParams({"request": f"{CLAIM}/{claim_id}"})
        page = await self.service.search(params, self.caller, CLAIM_RESPONSE)
        claim = (await self.service.store.read(CLAIM, claim_id)).json()
        if not page.items:
            return self._pending(answers, event)
        claim_response = page.items[0].json()
        message = response_message(
            answers=answers,
            event=event,
            code="ok",
            now=self.service.info.now,
            claim=claim,
            claim_response=claim_response,
            issues=await self._cancel_refused(claim_id, event),
            paths=paths,
        )
        if claim_response.get("outcome") == "error":
            message["entry"][0]["resource"]["eventCoding"]["code"] = EVENT_REJECT
        columns = SearchColumns(
            author_nihdi=self.provider,
            identifiers=[
                (_answer_system(self.provider), bundle_id),
                (_content_system(self.provider), f"{bundle_id}|{fingerprint}"),
            ],
        )
        try:
            stored = await self.service.store.create(ANSWER, message, columns)
        except IdentifierTaken:  # a replay of the same Bundle stored it meanwhile
            await self.session.rollback()
            replay = await self._stored(bundle_id, fingerprint)
            assert replay is not None
            return await self._replayed(replay)
        await self.session.commit()
        return Answer(200, stored.body, {})

    async def _cancel_refused(self, claim_id: str, event: str) -> list[Issue]:
        """AT-6: the fund refused the cancellation (the attestation stands): its codes, as the
        forwarder recorded them on the job (reason codes only, never health data)."""
        if event != EVENT_CANCEL_RESPONSE:
            return []
        job = await self.service.outbox.find(claim_id, JobKind.CANCEL)
        error = job.last_error if job is not None else None
        if not error or not error.startswith("CANCEL_REFUSED"):
            return []
        message = f"the sickness fund refused the cancellation; the attestation stands ({error})"
        return [Issue("business-rule", "", message, "AT-6")]

    # -- the other answers -------------------------------------------------------------------

    def _pending(self, answers: str, event: str) -> Answer:
        issue = Issue(
            "transient",
            "",
            "the sickness fund has not answered yet: send the same Bundle (same id) again later",
            "AT-7",
            severity="warning",
        )
        return self._message(503, answers, event, "transient-error", [issue], retry=True)

    def _refused(self, answers: str | None, status: int, issues: list[Issue]) -> Answer:
        return self._message(status, answers, EVENT_REJECT, "fatal-error", issues)

    def _message(
        self,
        status: int,
        answers: str | None,
        event: str,
        code: ResponseCode,
        issues: list[Issue],
        *,
        retry: bool = False,
    ) -> Answer:
        message = response_message(
            answers=answers, event=event, code=code, now=self.service.info.now, issues=issues
        )
        headers = {"Retry-After": _RETRY_AFTER} if retry else {}
        return Answer(status, orjson.dumps(message), headers)


class _KeyReused(Conflict):
    """AT-7: the provider sent this Bundle id before, with other content."""

    def __init__(self) -> None:
        super().__init__(
            "IDEMPOTENCY_KEY_REUSED: this Bundle id was used before for a different message",
            expression="Bundle.id",
        )

    def issues(self) -> list[Issue]:
        return [Issue("conflict", "Bundle.id", self.message, "AT-7")]


def _moved(issue: Issue, parsed: CreateMessage) -> Issue:
    """An issue about the mapped Claim, pointing into the message instead."""
    where = message_path(issue.expression, parsed.paths) if issue.expression else ""
    where = where or message_path("Claim", parsed.paths)
    return replace(issue, expression=where)


def _request_header_id(body: Any) -> str | None:
    """The request's MessageHeader id (what the answer responds to), else its Bundle id."""
    if not isinstance(body, dict):
        return None
    first = obj((items(body.get("entry")) or [None])[0]) or {}
    header = obj(first.get("resource")) or {}
    if header.get("resourceType") == "MessageHeader" and text(header.get("id")):
        return text(header.get("id"))
    return text(body.get("id"))
