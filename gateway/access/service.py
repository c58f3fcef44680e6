"""The template every resource family's service follows: load a record, describe it, decide, act,
audit (docs/architecture.md 5, 8).

A family supplies only ``describe``: what ``consent.decide`` needs to know of one of its stored
records (its kind, patient, author, state...). Reading the current version, an earlier one and
the history is then the same for every family, decided on the current version (a record's author
and patient never change between versions) and audited as a read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams

from consent import AccessPath, Action, Decision, PatientFacts, Resource, Visibility
from fhir_profiles.patients import patient_ssin_of
from gateway.access.guard import Event, Guard, RequestInfo, request_info
from gateway.auth.identity import Principal
from gateway.db import DbSession
from gateway.errors import BadRequest, PreconditionFailed
from gateway.fhir import references
from gateway.settings import Settings
from gateway.storage.store import Page, ResourceStore, StoredVersion

ServiceT = TypeVar("ServiceT")
CONDITION = references.IF_NONE_EXIST


@dataclass(frozen=True)
class Created:
    stored: StoredVersion
    created: bool  # False when a conditional create found the existing resource


@dataclass(frozen=True)
class Target:
    """A stored record as the access decision sees it: the version read, its parsed body, its
    patient (``None`` when pseudonymised, ID-21) and the decision's description of it."""

    stored: StoredVersion
    resource: dict[str, Any]
    ssin: str | None
    described: Resource


Describe = Callable[[StoredVersion, dict[str, Any], str | None], Resource]


def target_of(stored: StoredVersion, describe: Describe) -> Target:
    """``stored`` with its parsed body, its patient and ``describe``'s view of it."""
    resource = stored.json()
    ssin = patient_ssin_of(resource)
    return Target(stored, resource, ssin, describe(stored, resource, ssin))


class GuardedService:
    """A resource family's service: the request's store, settings and facts, the ``Guard`` that
    decides, acts and audits for a caller, and the shared read, vread and history."""

    RESOURCE: ClassVar[str]  # the family's resource type (claims also serve ClaimResponse)

    def __init__(self, store: ResourceStore, settings: Settings, info: RequestInfo) -> None:
        self.store = store
        self.settings = settings
        self.info = info

    def guard(self, caller: Principal) -> Guard:
        return Guard(self.store, caller, self.info)

    # -- what a family supplies ------------------------------------------------------------------

    def describe(
        self, stored: StoredVersion, resource: dict[str, Any], ssin: str | None
    ) -> Resource:
        """The decision's view of ``stored`` (whose parsed body is ``resource``)."""
        raise NotImplementedError

    def facts(self, ssin: str | None) -> PatientFacts | None:
        """The patient's facts when the family's rules need none of them (CO-9: claims); ``None``:
        the Guard loads them."""
        return None

    def reported(self, stored: StoredVersion, resource: dict[str, Any]) -> StoredVersion:
        """The current version (parsed: ``resource``) as a reader gets it (prescriptions: expired
        reads as stopped)."""
        return stored

    async def search(self, params: QueryParams, caller: Principal) -> Page:
        """The family's search, decided and audited (a family that searches supplies it)."""
        raise NotImplementedError

    # -- conditional create and update (FHIR R4 http.html#ccreate, #cond-update) -----------------

    async def matches(self, condition: str, caller: Principal) -> list[StoredVersion]:
        """What the condition (``If-None-Exist``, or a conditional update's query) finds, run as
        the caller's own search: only what he may see matches, and the search is audited. More
        than one match is 412."""
        params = references.condition_query(condition, self.RESOURCE, self.info.base)
        try:
            page = await self.search(params, caller)
        except BadRequest as exc:  # the parameter at fault is inside the condition
            raise BadRequest(f"{CONDITION}: {exc.message}", expression=CONDITION) from exc
        found = max(len(page.items), page.total or 0)
        if found > 1:
            raise PreconditionFailed(
                f"the condition matches {found} {self.RESOURCE} resources, not one",
                expression=CONDITION,
            )
        return page.items

    async def existing(self, condition: str, caller: Principal) -> StoredVersion | None:
        found = await self.matches(condition, caller)
        return found[0] if found else None

    # -- the shared path -------------------------------------------------------------------------

    async def load(self, logical_id: str, resource_type: str | None = None) -> Target:
        """The current version of ``logical_id`` (404 unknown, 410 deleted: the store's errors)."""
        stored = await self.store.read(resource_type or self.RESOURCE, logical_id)
        return target_of(stored, self.describe)

    async def decide(
        self,
        guard: Guard,
        action: Action,
        target: Target,
        *,
        path: AccessPath | None = None,
        visibility: Visibility | None = None,
    ) -> Decision:
        request = guard.request(action, target.described, path=path, visibility=visibility)
        return await guard.decide(request, target.ssin, self.facts(target.ssin))

    async def _permitted_read(
        self, logical_id: str, caller: Principal, resource_type: str | None
    ) -> Target:
        """The current version, once the caller may read it; the read is audited."""
        resource_type = resource_type or self.RESOURCE
        guard = self.guard(caller)
        target = await self.load(logical_id, resource_type)
        decision = await self.decide(guard, Action.READ, target)
        async with guard.access(decision, Event("read", resource_type, logical_id, target.ssin)):
            return target

    async def read(
        self, logical_id: str, caller: Principal, resource_type: str | None = None
    ) -> StoredVersion:
        target = await self._permitted_read(logical_id, caller, resource_type)
        return self.reported(target.stored, target.resource)

    async def vread(
        self,
        logical_id: str,
        version_id: int,
        caller: Principal,
        resource_type: str | None = None,
    ) -> StoredVersion:
        """An earlier version, decided on the current one."""
        await self._permitted_read(logical_id, caller, resource_type)
        return await self.store.vread(resource_type or self.RESOURCE, logical_id, version_id)

    async def history(
        self, logical_id: str, caller: Principal, resource_type: str | None = None
    ) -> list[StoredVersion]:
        await self._permitted_read(logical_id, caller, resource_type)
        return await self.store.history(resource_type or self.RESOURCE, logical_id)


def _service(
    cls: Callable[[ResourceStore, Settings, RequestInfo], ServiceT],
    request: Request,
    session: AsyncSession,
    info: RequestInfo,
) -> ServiceT:
    return cls(ResourceStore(session, request.app.state.keyring), request.app.state.settings, info)


def service_dependency(
    cls: Callable[[ResourceStore, Settings, RequestInfo], ServiceT],
) -> Callable[..., Awaitable[ServiceT]]:
    """The FastAPI dependency that builds ``cls`` for a request (the session commits once,
    after the route: ``gateway.db.get_session``)."""

    async def dependency(  # async: a plain def dependency would run in the thread pool
        request: Request, session: DbSession, info: Annotated[RequestInfo, Depends(request_info)]
    ) -> ServiceT:
        return _service(cls, request, session, info)

    return dependency


@asynccontextmanager
async def family_service(
    request: Request, cls: Callable[[ResourceStore, Settings, RequestInfo], ServiceT]
) -> AsyncIterator[ServiceT]:
    """``cls`` for this request in one transaction, committed when the block ends (before the
    route answers) and rolled back if it raises: what ``service_dependency`` and
    ``gateway.db.get_session`` give a route, for the hot routes that take no FastAPI dependencies
    (create, search and read; their dependency solving cost a tenth of a create, issue 18)."""
    async with request.app.state.sessions() as session:
        yield _service(cls, request, session, await request_info(request))
        await session.commit()
