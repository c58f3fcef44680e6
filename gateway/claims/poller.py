"""Settlement collection: reads each fund's feed of settled and cancelled attestations (AT-1).

Per fund, the gateway keeps the feed's cursor (``fund_cursors``). A poll reads the cursor, fetches
the page after it (``GET {fund}/settlements?since=``), then in one transaction moves the cursor
with a compare-and-set and applies the page's events: the ClaimResponse moves forward to
``settled`` or ``cancelled`` (a new version) and the Claim with it. If another poller moved the
cursor meanwhile, this page is dropped: that poller applied it. Each event is also recorded by its
id (``fund_events``), so an event read twice, from an old cursor or a second page, is applied
once. An event can arrive before the forwarder heard the acknowledgement (the connection dropped
after the fund committed): it is then the first answer stored, and the submission is closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from gateway.claims.answers import Answers, FundWork
from gateway.claims.funds import Permanent, Transient

log = structlog.get_logger("gateway.claims.poller")
_PAGES_PER_POLL = 20


def _claim_of(event: dict[str, Any]) -> str | None:
    """The claim an event is about: the idempotency key the forwarder sent is the claim's id."""
    request = event.get("request")
    identifier = request.get("identifier") if isinstance(request, dict) else None
    value = identifier.get("value") if isinstance(identifier, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


class SettlementPoller(FundWork):
    async def poll_all(self) -> int:
        """One round over every fund; a fund that does not answer is tried next round."""
        applied = 0
        for code in self.funds.codes:
            try:
                applied += await self.poll(code)
            except (Transient, Permanent) as exc:
                log.info("settlement_poll_failed", fund=code, reason=exc.reason)
            except Exception:
                log.exception("settlement_poll_crashed", fund=code)
        return applied

    async def poll(self, fund_code: str) -> int:
        """Read the feed of one fund up to its end (a bounded number of pages); events applied."""
        applied = 0
        for _ in range(_PAGES_PER_POLL):
            async with self.sessions() as session, session.begin():
                cursor = await Answers(session, self.keyring).records.cursor(fund_code)
            page = await self.funds.settlements(
                fund_code, cursor, self.settings.settlement_page_size
            )
            if not page.events and page.next_cursor == cursor:
                break
            now = self.clock()
            async with self.sessions() as session, session.begin():
                answers = Answers(session, self.keyring)
                if not await answers.records.advance_cursor(
                    fund_code, cursor, page.next_cursor, now
                ):
                    log.info("settlement_page_taken_by_another_poller", fund=fund_code)
                    break
                for event in page.events:
                    applied += await self._apply(answers, fund_code, event, now)
            if len(page.events) < self.settings.settlement_page_size:
                break
        return applied

    async def _apply(
        self, answers: Answers, fund_code: str, event: dict[str, Any], now: datetime
    ) -> int:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            log.warning("settlement_event_without_id", fund=fund_code)
            return 0
        claim_id = _claim_of(event)
        row = await answers.records.get(claim_id, lock=True) if claim_id else None
        if not await answers.records.first_time(
            fund_code, event_id[:128], row.claim_id if row else None, now
        ):
            return 0
        if row is None:
            # Not one of this gateway's claims (the fund serves other senders too).
            log.info("settlement_event_unmatched", fund=fund_code)
            return 0
        result = await answers.apply(row.claim_id, event, now)
        return int(result.stored)
