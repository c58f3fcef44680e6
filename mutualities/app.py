"""The HTTP face of the mock funds: one FastAPI app serving one or more fund codes.

Every fund lives under ``/funds/{code}`` (also when the process serves a single fund), so a fund's
base URL is the same whatever the deployment: ``http://127.0.0.1:9100/funds/100``. Routes are thin:
they check the envelope (JSON, a Claim, an Idempotency-Key) and hand over to :class:`Fund`.
The wire contract is in ``mutualities/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.types import ASGIApp

from mock_services.faults import FaultState
from mutualities import messages, responses
from mutualities.config import FundsConfig
from mutualities.errors import ProtocolError
from mutualities.faults import FundFaultUpdate, fault_layer, fund_faults
from mutualities.fund import Answer, Clock, Fund, utc_now
from mutualities.households import load_households
from mutualities.maximum_billing import MaximumBilling, load_ceilings
from mutualities.members import load_members
from mutualities.store import Stores, open_stores
from mutualities.tariffs import load_tariffs

IDEMPOTENCY_KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
# Printable ASCII, no spaces: anything the gateway generates (UUIDs, hashes, prefixed ids).
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_PAGE = 1000


class MutualityApp(FastAPI):
    """FastAPI with the fault layer outside its whole middleware stack (see faults.py)."""

    def build_middleware_stack(self) -> ASGIApp:
        return fault_layer(super().build_middleware_stack(), self.state.faults)


class _ProtocolFailure(Exception):
    def __init__(
        self, status: int, error: ProtocolError, issue_code: str, diagnostics: str
    ) -> None:
        super().__init__(error.value)
        self.status = status
        self.body = responses.operation_outcome(error, issue_code, diagnostics)


def create_app(config: FundsConfig, *, clock: Clock = utc_now) -> MutualityApp:
    tariffs = load_tariffs(config.tariffs_file)
    members = load_members(config.members_file)
    maximum_billing = MaximumBilling(
        load_households(members, config.households_file), load_ceilings(config.ceilings_file)
    )
    stores = open_stores(config.codes, data_dir=config.data_dir, database_url=config.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await stores.open()
        yield
        await stores.close()

    app = MutualityApp(
        title="Mock sickness funds", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.stores = stores
    app.state.funds = {
        code: Fund(
            code,
            stores.by_fund[code],
            tariffs=tariffs,
            members=members,
            maximum_billing=maximum_billing,
            clock=clock,
            settle_after=config.settle_after,
        )
        for code in config.codes
    }
    app.state.faults = {
        code: fund_faults(code, config.faults, config.seed) for code in config.codes
    }
    app.include_router(fund_router)
    app.include_router(admin_router)

    @app.exception_handler(_ProtocolFailure)
    async def _protocol_failure(_request: Request, exc: _ProtocolFailure) -> Response:
        return Response(exc.body, status_code=exc.status, media_type=responses.FHIR_JSON)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in error["loc"]) for error in exc.errors())
        body = responses.operation_outcome(
            ProtocolError.INVALID_REQUEST, "invalid", f"Invalid: {fields}"
        )
        return Response(body, status_code=400, media_type=responses.FHIR_JSON)

    return app


async def close_app(app: MutualityApp) -> None:
    """Dispose of the engines (tests that skip the lifespan call this)."""
    stores: Stores = app.state.stores
    await stores.close()


def _fund(request: Request, code: str) -> Fund:
    fund: Fund | None = request.app.state.funds.get(code)
    if fund is None:
        raise _ProtocolFailure(
            404, ProtocolError.UNKNOWN_FUND, "not-found", "No such fund in this process"
        )
    return fund


def _faults(request: Request, code: str) -> FaultState:
    _fund(request, code)
    state: FaultState = request.app.state.faults[code]
    return state


FundDep = Annotated[Fund, Depends(_fund)]
FaultDep = Annotated[FaultState, Depends(_faults)]

fund_router = APIRouter(prefix="/funds/{code}")


def _fhir(answer: Answer) -> Response:
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return Response(
        answer.body, status_code=answer.status, media_type=responses.FHIR_JSON, headers=headers
    )


async def _claim_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or body.get("resourceType") != "Claim":
        raise _ProtocolFailure(
            400, ProtocolError.NOT_A_CLAIM, "structure", "The body must be a FHIR Claim"
        )
    return body


@fund_router.post("/Claim")
async def submit_claim(fund: FundDep, request: Request) -> Response:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None or not _KEY.match(key):
        raise _ProtocolFailure(
            400,
            ProtocolError.MISSING_IDEMPOTENCY_KEY,
            "required",
            "An Idempotency-Key header is required",
        )
    return _fhir(await fund.submit(key, await _claim_body(request)))


@fund_router.post("/$process-message")
async def process_message(fund: FundDep, request: Request) -> Response:
    """The eAttest message (hl7-be/eattestation): create or cancel, answered with the response
    message. The request key is the Bundle id; an ``Idempotency-Key`` header, if sent, must be it."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    try:
        message = messages.read_request(body, fund.code)
    except messages.MessageRefused as exc:
        raise _ProtocolFailure(400, exc.error, exc.issue_code, exc.diagnostics) from exc
    header_key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if header_key is not None and header_key != message.key:
        raise _ProtocolFailure(
            400, ProtocolError.INVALID_REQUEST, "invalid", "Idempotency-Key differs from Bundle.id"
        )
    if message.event == messages.CREATE:
        answer = await fund.submit(message.key, message.claim, message.faults)
    else:
        answer = await fund.cancel(message.claim)
    if answer.status != 200:
        return _fhir(answer)
    wrapped = messages.response_bundle(
        answer.body, request_header=message.header_id, claim_entry=message.claim_entry
    )
    return _fhir(Answer(answer.status, wrapped, answer.replayed))


@fund_router.post("/Claim/$cancel")
async def cancel_claim(fund: FundDep, request: Request) -> Response:
    return _fhir(await fund.cancel(await _claim_body(request)))


@fund_router.get("/ClaimResponse")
async def claim_response(
    fund: FundDep,
    request: Request,
    request_key: Annotated[str, Query(alias="request-key", min_length=1)],
) -> Response:
    found = await fund.current(request_key)
    bodies = [found] if found is not None else []
    body = responses.searchset(bodies, links={"self": str(request.url)}, timestamp=fund.clock())
    return Response(body, media_type=responses.FHIR_JSON)


@fund_router.get("/settlements")
async def settlements(
    fund: FundDep,
    request: Request,
    since: Annotated[int, Query(ge=0)] = 0,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    found = await fund.events(since, count)
    cursor = found[-1][0] if found else since
    links = {
        "self": str(request.url),
        "next": str(request.url.replace_query_params(since=cursor, _count=count)),
    }
    # Each event is the response message around the stored ClaimResponse (hl7-be/eattestation).
    events = [messages.response_bundle(event) for _, event in found]
    body = responses.searchset(events, links=links, timestamp=fund.clock())
    return Response(body, media_type=responses.FHIR_JSON)


@fund_router.get("/healthz")
async def fund_health(fund: FundDep) -> dict[str, str]:
    return {"status": "ok", "fund": fund.code}


@fund_router.get("/admin/received")
async def received(fund: FundDep) -> dict[str, Any]:
    return await fund.report()


@fund_router.get("/admin/faults")
async def get_faults(state: FaultDep) -> dict[str, Any]:
    return state.snapshot()


@fund_router.post("/admin/faults")
async def set_faults(state: FaultDep, update: FundFaultUpdate) -> dict[str, Any]:
    state.apply(update)
    return state.snapshot()


admin_router = APIRouter()


@admin_router.get("/healthz")
async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "funds": sorted(request.app.state.funds)}


@admin_router.get("/admin/received")
async def received_all(request: Request) -> dict[str, Any]:
    return {
        "funds": {
            code: await fund.report() for code, fund in sorted(request.app.state.funds.items())
        }
    }


@admin_router.get("/admin/faults")
async def get_all_faults(request: Request) -> dict[str, Any]:
    return {
        "funds": {
            code: state.snapshot() for code, state in sorted(request.app.state.faults.items())
        }
    }


@admin_router.post("/admin/faults")
async def set_all_faults(request: Request, update: FundFaultUpdate) -> dict[str, Any]:
    """Apply the same change to every fund of the process."""
    states: dict[str, FaultState] = request.app.state.faults
    for state in states.values():
        state.apply(update)
    return {"funds": {code: state.snapshot() for code, state in sorted(states.items())}}
