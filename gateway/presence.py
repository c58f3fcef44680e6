"""Does a proof of presence prove anything? The national register says whether the eID card read
is the patient's current card (CO-2, RX-18 b; docs/access.md, "Presence proofs").

The card number's check digits are checked where a proof is read (``fhir_profiles.eid_card``, a
4xx); this module asks the register, over HTTP only (``national_register/README.md``):
``POST {GATEWAY_NATIONAL_REGISTER_URL}/checks`` with the SSIN and the card number in the body,
never in a URL. One attempt with a short timeout and no retry: a patient at the counter is not
kept waiting, and a slow register is not asked again and again. Anything but a clear "valid"
refuses the proof:

- ``Verdict.PROVEN``: the register answered ``valid``;
- ``Verdict.NOT_PROVEN``: it answered (unknown card, another person's, replaced, expired);
- ``Verdict.UNAVAILABLE``: no usable answer in time (refused or dropped connection, timeout, 5xx,
  a body we cannot read): fail closed (docs/architecture.md 5).

Logs carry the register's result code and error types, never the SSIN or the card number.
"""

from __future__ import annotations

from enum import Enum

import httpx
import orjson
import structlog

from gateway.settings import Settings

log = structlog.get_logger("gateway.presence")

_RESULTS = frozenset({"valid", "unknown-card", "not-holder", "replaced", "expired"})


class Verdict(Enum):
    PROVEN = "proven"
    NOT_PROVEN = "not-proven"
    UNAVAILABLE = "unavailable"


class NationalRegister:
    """The client of the register; one per app, over a connection pool of its own."""

    def __init__(
        self, base_url: str, timeout: float, http: httpx.AsyncClient | None = None
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/checks"
        self.timeout = timeout
        self.http = http or httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def check(self, ssin: str, card_number: str) -> Verdict:
        try:
            response = await self.http.post(
                self.url,
                content=orjson.dumps({"ssin": ssin, "card_number": card_number}),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:  # timeout, refused, reset, closed without an answer
            log.warning("presence_check_unavailable", error_type=type(exc).__name__)
            return Verdict.UNAVAILABLE
        result = _result(response)
        if result is None:
            log.warning("presence_check_unavailable", status=response.status_code)
            return Verdict.UNAVAILABLE
        if result != "valid":
            log.info("presence_not_proven", result=result)
            return Verdict.NOT_PROVEN
        return Verdict.PROVEN


def _result(response: httpx.Response) -> str | None:
    """The register's ``result`` code of a 200 answer; ``None`` for anything else."""
    if response.status_code != 200:
        return None
    try:
        result = orjson.loads(response.content).get("result")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return result if result in _RESULTS else None


def national_register(settings: Settings) -> NationalRegister | None:
    """The app's client (``app.state.national_register``), if ``GATEWAY_NATIONAL_REGISTER_URL``
    is set."""
    if not settings.national_register_url:
        return None
    return NationalRegister(
        settings.national_register_url, settings.national_register_timeout_seconds
    )
