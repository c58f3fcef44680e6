"""The HTTP face of the register (the wire contract is in ``national_register/README.md``).

- ``POST /checks`` ``{"ssin", "card_number"}``: is this card the person's current card? The SSIN
  travels in the body only, never in a URL, and no log line carries it or the card number.
- ``POST /admin/cards``: issue a card to a person (the demo and tests); it becomes the person's
  current card and replaces the one they held.
- ``GET/POST /admin/faults``, ``GET /healthz``: never faulted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict
from starlette.types import ASGIApp

from mock_services.faults import FaultState, FaultUpdate
from national_register.cards import Card, brussels_today, is_card_number, is_ssin_shape, verdict
from national_register.config import RegisterConfig, load_persons
from national_register.faults import fault_layer, register_faults
from national_register.store import CardTaken, RegisterStore, open_store

Clock = Callable[[], datetime]
log = structlog.get_logger("national_register")
# A new card without a given end is valid ten years (an adult's eID) [A].
DEFAULT_VALIDITY = timedelta(days=3652)


def utc_now() -> datetime:
    return datetime.now(UTC)


class RegisterApp(FastAPI):
    """FastAPI with the fault layer outside its whole middleware stack (see faults.py)."""

    def build_middleware_stack(self) -> ASGIApp:
        return fault_layer(super().build_middleware_stack(), self.state.faults)


def _card_number(value: str) -> str:
    if not is_card_number(value):
        raise ValueError("12 digits, the last two the modulo-97 check of the first ten")
    return value


def _ssin(value: str) -> str:
    if not is_ssin_shape(value):
        raise ValueError("11 digits")
    return value


Ssin = Annotated[str, AfterValidator(_ssin)]
CardNumber = Annotated[str, AfterValidator(_card_number)]


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ssin: Ssin
    card_number: CardNumber


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssin: Ssin
    card_number: CardNumber
    valid_from: date | None = None
    valid_until: date | None = None


def create_app(config: RegisterConfig, *, clock: Clock = utc_now) -> RegisterApp:
    seed = load_persons(config.persons_file)
    store = open_store(data_dir=config.data_dir, database_url=config.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await store.open(seed)
        yield
        await store.close()

    app = RegisterApp(
        title="Mock national register", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.store = store
    app.state.seed = seed
    app.state.clock = clock
    app.state.faults = register_faults(config.faults, config.seed)
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the fields at fault, never their values (an SSIN, a card number).
        fields = {".".join(str(p) for p in e["loc"] if p != "body") for e in exc.errors()}
        return _error(400, "INVALID_REQUEST", "invalid: " + (", ".join(sorted(fields)) or "body"))

    return app


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def _store(request: Request) -> RegisterStore:
    store: RegisterStore = request.app.state.store
    await store.open(request.app.state.seed)  # also without a lifespan (in-process tests)
    return store


router = APIRouter()


@router.post("/checks")
async def check(request: Request, body: CheckRequest) -> dict[str, Any]:
    store = await _store(request)
    today = brussels_today(request.app.state.clock())
    result = verdict(await store.find(body.card_number), body.ssin, today)
    log.info("card_checked", result=result.value)
    return {"result": result.value, "checked_on": today.isoformat()}


@router.post("/admin/cards", response_model=None)
async def issue(request: Request, body: IssueRequest) -> JSONResponse:
    store = await _store(request)
    now: datetime = request.app.state.clock()
    valid_from = body.valid_from or brussels_today(now)
    valid_until = body.valid_until or valid_from + DEFAULT_VALIDITY
    if valid_until < valid_from:
        return _error(400, "INVALID_REQUEST", "invalid: valid_until is before valid_from")
    card = Card(body.card_number, body.ssin, valid_from, valid_until)
    try:
        issued = await store.issue(card, now.astimezone(UTC))
    except CardTaken:
        return _error(409, "CARD_TAKEN", "this card number was issued to another person")
    log.info("card_issued" if issued else "card_already_current")
    return JSONResponse({"issued": issued}, status_code=201 if issued else 200)


@router.get("/admin/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    state: FaultState = request.app.state.faults
    return state.snapshot()


@router.post("/admin/faults")
async def set_faults(request: Request, update: FaultUpdate) -> dict[str, Any]:
    state: FaultState = request.app.state.faults
    state.apply(update)
    return state.snapshot()


@router.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}
