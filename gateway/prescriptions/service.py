"""Prescriptions (MedicationRequest): create with a RID, conditional create, read, history, search.

Validation is ``fhir_profiles``; storage is ``ResourceStore``; who may see what is ``access``.
The service never builds HTTP responses: routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from fhir_profiles import (
    ValidatedPrescription,
    is_valid_ssin,
    new_rid,
    normalise_rid,
    normalise_ssin,
    systems,
    validate_medication_request,
)
from gateway.auth.identity import Principal
from gateway.errors import BadRequest, PreconditionFailed, ProfileViolation
from gateway.fhir import search
from gateway.prescriptions import access
from gateway.settings import Settings
from gateway.storage.store import (
    Criteria,
    IdentifierTaken,
    Page,
    ResourceStore,
    SearchColumns,
    StoredVersion,
)

RESOURCE = "MedicationRequest"
SEARCH_PARAMS = ("identifier", "patient:identifier", "status", "authoredon")
STATUSES = frozenset(
    {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    }
)
# RX-4: 36^9 RIDs make a collision rare but not impossible at 10^8 prescriptions a year: draw again.
_RID_ATTEMPTS = 5


@dataclass(frozen=True)
class Created:
    stored: StoredVersion
    created: bool  # False when a conditional create found the existing resource


def search_columns(resource: dict[str, Any], checked: ValidatedPrescription) -> SearchColumns:
    return SearchColumns(
        patient_ssin=checked.patient_ssin or None,
        status=str(resource.get("status", "active")),
        authored_on=checked.authored_on,
        author_nihdi=checked.requester_nihdi,
        identifiers=_identifiers(resource),
    )


def _identifiers(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(i.get("system", "")), str(i.get("value", ""))) for i in resource.get("identifier", [])
    ]


def _identifier_param(value: str, name: str) -> tuple[str, str]:
    """A token search on identifier; a bare RID (a scanned barcode) means the RID system."""
    system, code = search.token(value, name)
    if system is None:
        rid = normalise_rid(code)
        if rid is None:
            raise BadRequest(
                f"{name} needs system|value (a bare value is accepted only for a RID)",
                expression=name,
            )
        return systems.RID, rid
    system = systems.normalise_system(system)
    if system == systems.RID:
        rid = normalise_rid(code)
        if rid is None:
            raise BadRequest(
                f"{name}: not a RID (BEP followed by 9 letters or digits)", expression=name
            )
        return system, rid
    return system, code


class PrescriptionService:
    def __init__(self, store: ResourceStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def create(
        self, body: dict[str, Any], caller: Principal, *, if_none_exist: str | None = None
    ) -> Created:
        checked = validate_medication_request(
            body, now=datetime.now(UTC), nihdi_check_digit=self.settings.nihdi_check_digit
        )
        if isinstance(checked, list):
            raise ProfileViolation(checked)
        access.check_requester_is_caller(caller, checked.requester_nihdi)

        condition = self._condition(if_none_exist, checked) if if_none_exist is not None else None
        if condition is not None:
            existing = await self._find_by_identifier(condition, caller)
            if existing is not None:
                return Created(existing, created=False)

        for _ in range(_RID_ATTEMPTS):
            rid = new_rid()
            resource = dict(checked.resource)
            # RX-5: the gateway assigns the RID; the profile refused any RID the client sent.
            resource["identifier"] = [
                *resource.get("identifier", []),
                {"system": systems.RID, "value": rid},
            ]
            columns = search_columns(resource, checked)
            try:
                return Created(await self.store.create(RESOURCE, resource, columns), created=True)
            except IdentifierTaken:
                if condition is not None:
                    # A concurrent retry won the race for the same identifier: answer with its result.
                    existing = await self._find_by_identifier(condition, caller)
                    if existing is not None:
                        return Created(existing, created=False)
                if await self._client_identifier_taken(checked):
                    raise
        raise RuntimeError(
            "could not draw an unused RID"
        )  # pragma: no cover - 5 collisions in a row

    def _condition(self, if_none_exist: str, checked: ValidatedPrescription) -> tuple[str, str]:
        """If-None-Exist (FHIR R4 http.html#ccreate): ``identifier=system|value`` only.

        The identifier must be one the resource carries: the unique identifier index is what makes
        two concurrent retries end with one resource.
        """
        params = QueryParams(if_none_exist)
        if list(params.keys()) != ["identifier"] or len(params.getlist("identifier")) != 1:
            raise BadRequest(
                "If-None-Exist supports exactly one parameter: identifier=system|value",
                expression="If-None-Exist",
            )
        system, value = search.token(params["identifier"], "If-None-Exist")
        if system is None:
            raise BadRequest(
                "If-None-Exist identifier needs system|value", expression="If-None-Exist"
            )
        wanted = (systems.normalise_system(system), value)
        if wanted not in _identifiers(checked.resource):
            raise BadRequest(
                "the If-None-Exist identifier must be one of the resource's identifiers",
                expression="If-None-Exist",
            )
        return wanted

    async def _find_by_identifier(
        self, identifier: tuple[str, str], caller: Principal
    ) -> StoredVersion | None:
        page = await self.store.search(RESOURCE, Criteria(identifier=identifier), count=1)
        if not page.items:
            return None
        found = page.items[0]
        if not access.may_see_conditional_match(caller, found):
            # Never hand another prescriber's prescription back through a guessed identifier.
            raise PreconditionFailed("If-None-Exist matches a resource that is not yours")
        return found

    async def _client_identifier_taken(self, checked: ValidatedPrescription) -> bool:
        for pair in _identifiers(checked.resource):
            if (await self.store.search(RESOURCE, Criteria(identifier=pair), count=0)).total:
                return True
        return False

    async def read(self, logical_id: str, caller: Principal) -> StoredVersion:
        stored = await self.store.read(RESOURCE, logical_id)
        access.check_read(caller, stored)
        return stored

    async def vread(self, logical_id: str, version_id: int, caller: Principal) -> StoredVersion:
        access.check_read(caller, await self.store.read(RESOURCE, logical_id))
        return await self.store.vread(RESOURCE, logical_id, version_id)

    async def history(self, logical_id: str, caller: Principal) -> list[StoredVersion]:
        access.check_read(caller, await self.store.read(RESOURCE, logical_id))
        return await self.store.history(RESOURCE, logical_id)

    async def search(self, params: QueryParams, caller: Principal) -> Page:
        search.check_known(params, SEARCH_PARAMS)
        criteria = Criteria(
            identifier=_opt(params, "identifier", _identifier_param),
            patient_ssin=_opt(params, "patient:identifier", _patient_param),
            statuses=_statuses(params),
            authored=search.date_ranges(params.getlist("authoredon"), "authoredon"),
        )
        criteria = access.narrow_search(caller, criteria)
        count = search.page_size(
            params, self.settings.default_page_size, self.settings.max_page_size
        )
        return await self.store.search(
            RESOURCE, criteria, count=count, cursor=search.cursor(params)
        )


def _opt(params: QueryParams, name: str, parse: Any) -> Any:
    value = search.single(params, name)
    return None if value is None else parse(value, name)


def _patient_param(value: str, name: str) -> str:
    system, code = search.token(value, name)
    if system is not None and systems.normalise_system(system) != systems.SSIN:
        raise BadRequest(f"{name}: only the SSIN system is searchable", expression=name)
    if not is_valid_ssin(code):
        raise BadRequest(f"{name}: not a valid SSIN", expression=name)
    return normalise_ssin(code)


def _statuses(params: QueryParams) -> tuple[str, ...]:
    values: list[str] = []
    for raw in params.getlist("status"):
        values.extend(v for v in raw.split(",") if v)
    unknown = [v for v in values if v not in STATUSES]
    if unknown:
        raise BadRequest("status: unknown code", expression="status")
    return tuple(values)
