"""The production shape under failures, through the proxy (issue 19, items 1 to 3).

docker/stack.py starts PostgreSQL, Redis, the mock funds, two ``gateway serve`` instances, a
``gateway worker`` and nginx with docker/nginx.conf, as `make stack` does. Clients (a GP's
software and a pharmacy's, with real certificates and tokens) send a bounded mixed load through
nginx: prescriptions created with ``If-None-Exist``, fetched by RID, dispensed by RID, and claims
with an ``Idempotency-Key``. Meanwhile one part fails: an instance is killed (SIGKILL) and started
again; both instances are stopped with SIGTERM in turn and started again (a rolling restart);
Redis stops for 10 s; PostgreSQL stops for 10 s.

A client retries a write that got a retryable answer with the same condition or key, as a
client should. After each failure: every acknowledged write (201/202) reads back, no prescription
exists twice, every acknowledged claim reached its fund exactly once (the fund's
``/admin/received``), ``gateway audit verify`` passes, and while the part was down clients saw
nothing but successes and retryable answers (502/503 with ``Retry-After``); a rolling restart
shows no 5xx at all. The figures of each run are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from fhir_profiles import systems
from gateway.auth import devpki
from tests.claims.factories import claim, item
from tests.dispenses.factories import dispense
from tests.e2e.test_claims_exactly_once import FEES, synthetic_ssins
from tests.fhir_profiles.guide_examples import guide_prescription, ssin
from tests.fixtures.auth import PHARMACY_NIHDI, PRESCRIBER_NIHDI, TestClient, token_form
from tests.fixtures.fhir import FHIR_JSON, rid_of
from tests.stack.conftest import load_stack_module

# One event loop for the module: the clients and their connections live across the tests.
pytestmark = [pytest.mark.stack, pytest.mark.asyncio(loop_scope="module")]

stack_module = load_stack_module()
Stack = stack_module.Stack

SOFTWARE = "urn:example:stack-his"  # the GP software's own prescription numbers
CLAIM_FUNDS = ("100", "300")
CLAIM_PATIENTS = 1500  # one patient per claim: no claim is a duplicate of another (AT-7)
CLIENTS_AT_ONCE = 6  # concurrent clients of the load
RETRYABLE = frozenset({502, 503})
OUTAGE_SECONDS = 10.0
PROXY_FAIL_TIMEOUT = 5  # docker/nginx.conf, upstream servers' fail_timeout
SETTLE_DEADLINE = 60.0
# The mix of the load: how often each operation is picked.
MIX = (("create", 4), ("fetch", 3), ("dispense", 2), ("claim", 2))


@dataclass
class Rx:
    number: str
    body: dict[str, Any]
    id: str | None = None
    rid: str | None = None
    dispensed: str | None = None  # the acknowledged MedicationDispense id
    dispense_uncertain: bool = False  # a dispense got a 502: it may have been done


@dataclass
class Claim:
    key: str
    fund: str
    body: dict[str, Any]
    id: str | None = None


@dataclass
class Answer:
    at: float
    op: str
    status: int
    retry_after: bool


@dataclass
class Run:
    """One failure: what the clients sent and were told."""

    name: str
    answers: list[Answer] = field(default_factory=list)
    acked_rx: list[Rx] = field(default_factory=list)
    acked_dispenses: list[Rx] = field(default_factory=list)
    acked_claims: list[Claim] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    back_at: float = 0.0  # when the failed part was started again
    seconds: dict[str, float] = field(default_factory=dict)  # load, settle, check

    def note(self, op: str, response: httpx.Response) -> None:
        self.answers.append(
            Answer(time.monotonic(), op, response.status_code, "retry-after" in response.headers)
        )

    def figures(self) -> dict[str, Any]:
        retryable = [a for a in self.answers if a.status in RETRYABLE]
        first = min((a.at for a in retryable), default=self.back_at)
        last = max((a.at for a in retryable), default=self.back_at)
        return {
            "requests": len(self.answers),
            "retryable": len(retryable),
            "by_status": dict(sorted(Counter(a.status for a in self.answers).items())),
            # clients saw retryable answers from the first to the last of them
            "retryable_seconds": round(last - first, 2),
            # the failed part answers again (it was started and answers) until the last one
            "recovery_seconds": round(max(0.0, last - self.back_at), 2),
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "acknowledged": {
                "prescriptions": len(self.acked_rx),
                "dispenses": len(self.acked_dispenses),
                "claims": len(self.acked_claims),
            },
        }


class Load:
    """The clients' side: a GP's software and a pharmacy's, through the proxy."""

    def __init__(self, http: httpx.AsyncClient, prescriber: str, pharmacy: str) -> None:
        self.http = http
        self.headers = {
            "prescriber": {"authorization": f"Bearer {prescriber}"},
            "pharmacist": {"authorization": f"Bearer {pharmacy}"},
        }
        self.numbers = itertools.count(1)
        self.patients = iter(
            [(s, CLAIM_FUNDS[i % 2]) for i, s in enumerate(synthetic_ssins(CLAIM_PATIENTS))]
        )
        self.open: list[Rx] = []  # created, not yet dispensed
        self.known: list[Rx] = []  # created (fetched by RID)
        self.retry_rx: list[Rx] = []
        self.retry_dispense: list[Rx] = []
        self.retry_claims: list[Claim] = []
        self.random = random.Random(19)

    def _answer_is_fine(self, run: Run, op: str, response: httpx.Response, *ok: int) -> bool:
        """Notes the answer; True for a success, False for a retryable one (to retry)."""
        run.note(op, response)
        if response.status_code in ok:
            return True
        if response.status_code in RETRYABLE and "retry-after" in response.headers:
            return False
        run.unexpected.append(f"{op}: {response.status_code} {response.text[:200]}")
        return False

    async def create(self, run: Run, rx: Rx | None = None) -> None:
        if rx is None:
            n = next(self.numbers)
            number = f"rx-{run.name}-{n}"
            patient = ssin(date(1960, 1, 1) + timedelta(days=n % 5000), 100 + n % 800)
            body = guide_prescription(
                datetime.now(UTC),
                prescriber=PRESCRIBER_NIHDI,
                patient=patient,
                identifier=[{"system": SOFTWARE, "value": number}],
            )
            rx = Rx(number, body)
        response = await self.http.post(
            "/fhir/MedicationRequest",
            json=rx.body,
            headers={
                **FHIR_JSON,
                **self.headers["prescriber"],
                "if-none-exist": f"identifier={SOFTWARE}|{rx.number}",
            },
        )
        if self._answer_is_fine(run, "create", response, 200, 201):
            created = response.json()
            rx.id, rx.rid = created["id"], rid_of(created)
            run.acked_rx.append(rx)
            self.open.append(rx)
            self.known.append(rx)
        elif response.status_code in RETRYABLE:
            self.retry_rx.append(rx)

    async def fetch(self, run: Run) -> None:
        if not self.known:
            return
        rx = self.random.choice(self.known)
        response = await self.http.get(
            "/fhir/MedicationRequest",
            params={"identifier": f"{systems.RID}|{rx.rid}"},
            headers=self.headers["pharmacist"],
        )
        if self._answer_is_fine(run, "fetch", response, 200):
            [entry] = response.json()["entry"]
            assert entry["resource"]["id"] == rx.id

    async def dispense(self, run: Run, rx: Rx | None = None) -> None:
        if rx is None:
            if not self.open:
                return
            rx = self.open.pop(self.random.randrange(len(self.open)))
        assert rx.rid is not None
        response = await self.http.post(
            "/fhir/MedicationDispense",
            json=dispense(rid=rx.rid),
            headers={**FHIR_JSON, **self.headers["pharmacist"]},
        )
        if response.status_code == 409 and rx.dispense_uncertain:
            run.note("dispense", response)  # the attempt that got the 502 was done after all
            rx.dispensed = "unknown"
            run.acked_dispenses.append(rx)
        elif self._answer_is_fine(run, "dispense", response, 201):
            rx.dispensed = response.json()["id"]
            run.acked_dispenses.append(rx)
        elif response.status_code in RETRYABLE:
            rx.dispense_uncertain = rx.dispense_uncertain or response.status_code == 502
            self.retry_dispense.append(rx)

    async def claim(self, run: Run, sent: Claim | None = None) -> None:
        if sent is None:
            patient, fund = next(self.patients)
            code = self.random.choice(sorted(FEES))
            body = claim(patient=patient, insurer=fund, items=[item(code, price=FEES[code])])
            sent = Claim(f"stack-{run.name}-{patient}", fund, body)
        response = await self.http.post(
            "/fhir/Claim",
            json=sent.body,
            headers={**FHIR_JSON, **self.headers["prescriber"], "idempotency-key": sent.key},
        )
        if self._answer_is_fine(run, "claim", response, 201, 202):
            sent.id = response.json()["id"]
            run.acked_claims.append(sent)
        elif response.status_code in RETRYABLE:
            self.retry_claims.append(sent)

    async def one(self, run: Run) -> None:
        """One request: a pending retry first, else a new operation from the mix."""
        if self.retry_rx:
            await self.create(run, self.retry_rx.pop(0))
        elif self.retry_dispense:
            await self.dispense(run, self.retry_dispense.pop(0))
        elif self.retry_claims:
            await self.claim(run, self.retry_claims.pop(0))
        else:
            op = self.random.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
            await getattr(self, op)(run)

    def pending(self) -> int:
        return len(self.retry_rx) + len(self.retry_dispense) + len(self.retry_claims)

    async def drive(self, run: Run, stop: asyncio.Event) -> None:
        async def client() -> None:
            while not stop.is_set():
                try:
                    await self.one(run)
                except httpx.TransportError as error:  # nginx itself never goes away
                    run.unexpected.append(f"transport: {type(error).__name__}")
                if run.answers and run.answers[-1].status in RETRYABLE:
                    await asyncio.sleep(0.2)  # a client honours Retry-After, scaled down

        await asyncio.gather(*(client() for _ in range(CLIENTS_AT_ONCE)))

    async def settle(self, run: Run, deadline: float = 30) -> None:
        """Retry what is still owed an answer until every write is acknowledged."""
        until = time.monotonic() + deadline
        while self.pending() and time.monotonic() < until:
            await self.one(run)
        assert not self.pending(), f"writes still refused after {deadline}s"


@dataclass
class World:
    stack: Any
    load: Load
    http: httpx.AsyncClient
    runs: list[Run] = field(default_factory=list)


def register(stack: Any, role: str, nihdi: str, workdir: Path) -> TestClient:
    """A client certificate from the stack's development CA, registered by the operator's
    command (docs/auth.md)."""
    issuer = devpki.load_issuer(stack.state / "gateway" / "pki")
    cert, key = devpki.issue_client_certificate(issuer, common_name=f"Stack {role}", nihdi=nihdi)
    files = devpki.write_client(workdir / role, cert, key, issuer.cert)
    client_id = f"stack-{role}"
    stack.gateway(
        "clients", "register", "--role", role, "--cert", str(files.cert_path),
        "--nihdi", nihdi, "--client-id", client_id,
    )  # fmt: skip
    return TestClient(client_id, role, nihdi, cert, key, [issuer.cert])


def token(stack: Any, client: TestClient) -> str:
    url = f"{stack.proxy_url}/oauth/token"
    response = httpx.post(url, data=token_form(client.assertion(url)), timeout=10)
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    # Not under pytest's temporary directory: the postgres user must reach its data directory.
    state = Path(tempfile.mkdtemp(prefix="gateway-stack-"))
    members = [
        {"ssin": s, "fund": CLAIM_FUNDS[i % 2], "preferential": False}
        for i, s in enumerate(synthetic_ssins(CLAIM_PATIENTS))
    ]
    (state / "members.json").write_text(json.dumps({"members": members}))
    running = Stack(
        state,
        settings={
            # Scaled for a test: many requests from two clients, quick redelivery to the funds.
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",
            "GATEWAY_TOKEN_RATE_LIMIT_PER_MINUTE": "1000",
            "GATEWAY_WORKER_POLL_SECONDS": "0.2",
            "GATEWAY_CLAIM_MAX_ATTEMPTS": "60",
            "GATEWAY_CLAIM_BACKOFF_INITIAL_SECONDS": "0.2",
            "GATEWAY_CLAIM_BACKOFF_MAX_SECONDS": "1",
            "GATEWAY_CLAIM_BACKOFF_JITTER_SECONDS": "0.2",
            "GATEWAY_CLAIM_SEND_TIMEOUT_SECONDS": "3",
            "GATEWAY_CLAIM_LEASE_SECONDS": "5",
            "GATEWAY_SETTLEMENT_POLL_SECONDS": "0.5",
            "GATEWAY_LOG_LEVEL": "WARNING",
        },
    )
    running.funds_args = [
        "--members", str(state / "members.json"), "--settle-after-seconds", "1",
        "--log-level", "WARNING",
    ]  # fmt: skip
    try:
        running.up()
        yield running
    finally:
        running.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: Any) -> AsyncIterator[World]:
    workdir = stack.state / "clients"
    prescriber = register(stack, "prescriber", PRESCRIBER_NIHDI, workdir)
    pharmacy = register(stack, "pharmacist", PHARMACY_NIHDI, workdir)
    async with httpx.AsyncClient(base_url=stack.proxy_url, timeout=30) as http:
        load = Load(http, token(stack, prescriber), token(stack, pharmacy))
        yield World(stack, load, http)
    print("\nstack failures:", json.dumps({r.name: r.figures() for r in world_runs}, indent=2))


world_runs: list[Run] = []


async def under_load(world: World, name: str, failure: Callable[[], float]) -> Run:
    """Load for a moment, the failure (returns when the part was started again), load again,
    then every pending write retried until acknowledged."""
    run = Run(name)
    world_runs.append(run)
    stop = asyncio.Event()
    started = time.monotonic()
    driving = asyncio.create_task(world.load.drive(run, stop))
    await asyncio.sleep(2)
    run.back_at = await asyncio.to_thread(failure)
    await asyncio.sleep(4)
    stop.set()
    await driving
    run.seconds["load"] = time.monotonic() - started
    await world.load.settle(run)
    run.seconds["settle"] = time.monotonic() - started - run.seconds["load"]
    return run


async def check(world: World, run: Run) -> None:
    """What every failure must leave true."""
    started = time.monotonic()
    assert not run.unexpected, run.unexpected[:10]
    assert run.acked_rx, run.figures()
    assert run.acked_claims, run.figures()
    http, headers = world.http, world.load.headers
    gate = asyncio.Semaphore(CLIENTS_AT_ONCE)

    async def get(path: str, who: str, **params: str) -> dict[str, Any]:
        async with gate:
            response = await http.get(path, params=params, headers=headers[who])
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        found: dict[str, Any] = response.json()
        return found

    async def prescription_once(rx: Rx) -> None:
        found = await get(
            "/fhir/MedicationRequest", "prescriber", identifier=f"{SOFTWARE}|{rx.number}"
        )
        assert [e["resource"]["id"] for e in found["entry"]] == [rx.id], rx.number

    async def dispensed(rx: Rx) -> None:
        read = await get(f"/fhir/MedicationRequest/{rx.id}", "prescriber")
        assert read["status"] == "completed", rx.number
        if rx.dispensed != "unknown":
            await get(f"/fhir/MedicationDispense/{rx.dispensed}", "pharmacist")

    # Every acknowledged write reads back, and no prescription exists twice.
    await asyncio.gather(
        *(prescription_once(rx) for rx in run.acked_rx),
        *(dispensed(rx) for rx in run.acked_dispenses),
        *(get(f"/fhir/Claim/{sent.id}", "prescriber") for sent in run.acked_claims),
    )
    run.seconds["reads"] = time.monotonic() - started
    await asyncio.to_thread(delivered_once, world.stack, run.acked_claims)
    run.seconds["delivered"] = time.monotonic() - started - run.seconds["reads"]
    verified = world.stack.gateway("audit", "verify")
    assert verified.returncode == 0, verified.stdout
    run.seconds["check"] = time.monotonic() - started


def delivered_once(stack: Any, claims: list[Claim]) -> None:
    until = time.monotonic() + SETTLE_DEADLINE
    while True:
        keys: Counter[str] = Counter()
        for fund in CLAIM_FUNDS:
            report = httpx.get(f"{stack.fund_url(fund)}/admin/received", timeout=30).json()
            keys.update(a["idempotency_key"] for a in report["attestations"])
        assert max(keys.values(), default=1) == 1, "a claim was delivered twice"
        missing = [c.id for c in claims if keys[str(c.id)] != 1]
        if not missing:
            return
        assert time.monotonic() < until, f"{len(missing)} claims not delivered: {missing[:5]}"
        time.sleep(0.5)


# --- the failures ----------------------------------------------------------------------------


async def test_an_instance_killed_and_started_again(world: World) -> None:
    stack = world.stack

    def failure() -> float:
        stack.kill("gateway-1")
        time.sleep(2)
        stack.start("gateway-1")
        return time.monotonic()

    run = await under_load(world, "sigkill", failure)
    await check(world, run)


async def test_a_rolling_restart_answers_every_request(world: World) -> None:
    stack = world.stack

    def failure() -> float:
        for name in stack_module.INSTANCES:
            stack.stop(name)  # SIGTERM: it drains, then finishes what is in flight
            stack.start(name)  # returns once it answers /healthz
            # nginx tries an instance it took out again after fail_timeout (5s, nginx.conf):
            # stopping the other one sooner leaves it no instance to send requests to.
            time.sleep(PROXY_FAIL_TIMEOUT + 1)
        return time.monotonic()

    run = await under_load(world, "rolling-sigterm", failure)
    await check(world, run)
    assert not [a for a in run.answers if a.status >= 500], run.figures()


async def test_redis_down_for_ten_seconds(world: World) -> None:
    stack = world.stack

    def failure() -> float:
        stack.stop("redis")
        time.sleep(OUTAGE_SECONDS)
        stack.start("redis")
        return time.monotonic()

    run = await under_load(world, "redis-down", failure)
    await check(world, run)
    assert run.figures()["retryable"] > 0  # the outage was seen, and answered retryably


async def test_postgresql_down_for_ten_seconds(world: World) -> None:
    stack = world.stack

    def failure() -> float:
        stack.stop("postgres")
        time.sleep(OUTAGE_SECONDS)
        stack.start("postgres")
        return time.monotonic()

    run = await under_load(world, "postgres-down", failure)
    await check(world, run)
    assert run.figures()["retryable"] > 0
    assert stack.alive("worker"), stack.tail("worker")


async def test_nginx_takes_an_instance_out_while_it_is_not_ready(world: World) -> None:
    """An instance that lost its database (started on an address where none listens) is alive
    but not ready: its requests are 503s, which nginx counts, so after max_fails it sends that
    instance nothing for fail_timeout, and every GET through the proxy is answered by the other."""
    stack, load = world.stack, world.load
    service = stack.services["gateway-2"]
    normal = service.env
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{stack_module.free_port()}/gateway"
    stack.stop("gateway-2")
    service.env = {**normal, "GATEWAY_DATABASE_URL": nowhere}
    try:
        stack.start("gateway-2")
        direct = stack.instance_url("gateway-2")
        assert (await world.http.get(f"{direct}/readyz")).status_code == 503
        started = time.monotonic()
        statuses: Counter[int] = Counter()
        for rx in load.known[:40]:
            response = await world.http.get(
                "/fhir/MedicationRequest",
                params={"identifier": f"{systems.RID}|{rx.rid}"},
                headers=load.headers["pharmacist"],
            )
            statuses[response.status_code] += 1
        seconds = time.monotonic() - started
        metrics = (await world.http.get(f"{direct}/metrics")).text
        refused = sum(
            float(value)
            for labels, value in re.findall(
                r"^gateway_http_requests_total\{([^}]*)\} (\S+)$", metrics, flags=re.M
            )
            if 'route="/fhir/MedicationRequest"' in labels and 'status="503"' in labels
        )
    finally:
        stack.stop("gateway-2")
        service.env = normal
        stack.start("gateway-2")
    assert statuses == Counter({200: min(40, len(load.known))}), statuses
    # max_fails (3) per fail_timeout window (5 s), where round-robin would have sent it half.
    windows = 1 + int(seconds // PROXY_FAIL_TIMEOUT)
    assert refused <= 3 * windows, (refused, seconds)
    assert refused < sum(statuses.values()) / 2
    print(
        f"\nnot ready: {refused:.0f} of {sum(statuses.values())} GETs tried on it in {seconds:.1f}s"
    )
