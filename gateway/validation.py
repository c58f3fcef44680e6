"""``POST /fhir/[type]/$validate`` (FHIR R4 resource-operation-validate.html) for MedicationRequest,
MedicationDispense, Claim and Consent: would a create accept this content?

The body is the resource itself (what fhirpy's ``is_valid()`` sends) or a ``Parameters`` with a
``resource`` and optionally ``mode`` = ``create``. The checks are the ones create runs on the
content, by the same functions: FHIR R4 structure and the Belgian profile (``fhir_profiles``), the
gateway's own extensions (``prescriptions.server_managed``), the consent shapes
(``consents.shapes``) and the claim's fund and request key. Not judged: who may create it (the
access decision) and what needs stored data (the prescription a dispense names, a duplicate
attestation, an active consent already there).

The answer is 200 with an OperationOutcome whether the resource is valid or not (FHIR R4
resource-operation-validate.html): one ``information`` issue when it is, the errors with their
``expression`` and rule id when not. A request that cannot be validated (not FHIR JSON, another
resource type, an unsupported mode) is a 4xx. Nothing is stored or forwarded, and nothing is
audited: no patient's data is read or written, and the answer depends on the body alone
(docs/capability.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from fhir_profiles import Issue, validate_medication_dispense, validate_medication_request
from fhir_profiles.claim import validate_claim
from gateway.access.facts import RELATIONSHIP
from gateway.access.facts import RESOURCE as CONSENT
from gateway.access.guard import RequestInfo, request_info
from gateway.claims.auth import ClaimCreate
from gateway.claims.funds import route as fund_route
from gateway.claims.model import CLAIM
from gateway.claims.service import request_key
from gateway.consents import shapes
from gateway.consents.auth import ConsentCreate
from gateway.consents.service import ConsentService
from gateway.db import DbSession
from gateway.dispenses.auth import DispenseCreate
from gateway.dispenses.service import RESOURCE as MEDICATION_DISPENSE
from gateway.errors import BadRequest, ProfileViolation
from gateway.fhir.conformance import OperationParam, OperationSpec
from gateway.fhir.negotiation import FhirBody, expect_resource_type
from gateway.fhir.outcomes import outcome_response
from gateway.prescriptions import server_managed
from gateway.prescriptions.auth import PrescriptionCreate
from gateway.prescriptions.service import RESOURCE as MEDICATION_REQUEST
from gateway.settings import Settings
from gateway.storage.store import ResourceStore

CODE: Final = "validate"
TYPES: Final = (MEDICATION_REQUEST, MEDICATION_DISPENSE, CLAIM, CONSENT)
_STANDARD: Final = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
_PARAMETERS: Final = frozenset({"resource", "mode"})
_MODES: Final = frozenset({"create"})  # FHIR R4 resource-validation-mode; update/delete: instance

router = APIRouter()
Info = Annotated[RequestInfo, Depends(request_info)]


def operation_spec(resource_type: str) -> OperationSpec:
    """``$validate`` on ``resource_type``, as this server runs it (it constrains the standard one)."""
    return OperationSpec(
        CODE,
        f"Would a create accept this {resource_type}? Runs create's content checks (FHIR R4 "
        "structure, the Belgian profile rules) and answers 200 with an OperationOutcome: one "
        "information issue when valid, else one issue per broken rule with its expression and "
        "rule id. Not judged: who may create it, and checks that need stored data. Stores, "
        "forwards and audits nothing; same token scope as create.",
        (
            OperationParam(
                "resource",
                "in",
                resource_type,
                "the resource to check; or send the resource itself as the body",
                min=1,
            ),
            OperationParam(
                "mode",
                "in",
                "code",
                "create (the default): the checks of a create; update, delete and profile are "
                "not supported",
            ),
            OperationParam(
                "return", "out", "OperationOutcome", "the outcome, valid or not (200)", min=1
            ),
        ),
        affects_state=False,
        base=_STANDARD,
    )


def _path(index: int, element: str = "") -> str:
    return f"Parameters.parameter[{index}]{element}"


def _from_parameters(body: dict[str, Any]) -> dict[str, Any]:
    """The ``resource`` of a ``Parameters`` body, once its ``mode`` (if any) is one we run.

    Read here rather than by ``gateway.fhir.parameters``: the resource inside is what is being
    validated, so its faults must come back as issues (200), not as a malformed request (400)."""
    given = body.get("parameter")
    if not isinstance(given, list):
        raise BadRequest("$validate needs the parameter resource", expression="Parameters")
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, parameter in enumerate(given):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(parameter, dict) or name not in _PARAMETERS:
            raise BadRequest(
                "$validate: unknown parameter (known: mode, resource)", expression=_path(index)
            )
        if name in seen:
            raise BadRequest(f"{name} may be given once", expression=_path(index))
        seen[name] = (index, parameter)
    if "mode" in seen:
        index, mode = seen["mode"]
        if mode.get("valueCode") not in _MODES:
            raise BadRequest(
                "$validate runs mode create (or no mode) at type level",
                expression=_path(index, ".valueCode"),
            )
    if "resource" not in seen:
        raise BadRequest("$validate needs the parameter resource", expression="Parameters")
    index, parameter = seen["resource"]
    resource = parameter.get("resource")
    if not isinstance(resource, dict):
        raise BadRequest("resource: a whole resource", expression=_path(index, ".resource"))
    return resource


def _resource_of(body: dict[str, Any], resource_type: str) -> dict[str, Any]:
    resource = _from_parameters(body) if body.get("resourceType") == "Parameters" else body
    expect_resource_type(resource, resource_type)  # another type is a request error (400)
    return resource


def _answer(issues: list[Issue], resource_type: str) -> Response:
    if not issues:
        message = f"valid: the {resource_type} keeps every rule a create checks"
        issues = [Issue("informational", "", message, severity="information")]
    return outcome_response(200, issues)


def _prescription(resource: dict[str, Any], now: Any, settings: Settings) -> list[Issue]:
    """What ``PrescriptionService.create`` checks before deciding: the gateway's extensions, then
    the profile (RX-*, ID-*)."""
    issues = server_managed.issues(resource)
    checked = validate_medication_request(
        resource, now=now, nihdi_check_digit=settings.nihdi_check_digit
    )
    return issues + (checked if isinstance(checked, list) else [])


def _claim(
    resource: dict[str, Any], now: Any, settings: Settings, idempotency_key: str | None
) -> list[Issue]:
    """What ``ClaimService.create`` checks on the content: the eAttest profile, a fund that can be
    reached (ID-13), a request key (AT-7)."""
    checked = validate_claim(resource, now=now, nihdi_check_digit=settings.nihdi_check_digit)
    if isinstance(checked, list):
        return checked
    issues: list[Issue] = []
    if fund_route(settings.mutuality_urls, checked.fund_code) is None:
        message = "no sickness fund with this code (or its union's) is reachable from here"
        issues.append(Issue("not-supported", "Claim.insurer.identifier.value", message, "ID-13"))
    try:
        request_key(checked, idempotency_key)
    except ProfileViolation as violation:
        issues.extend(violation.issues())
    return issues


def _consent(resource: dict[str, Any], service: ConsentService) -> list[Issue]:
    """What ``ConsentService.create`` checks on the content: the shapes (CO-*), a new record is
    active (CO-4), a relationship's legal period (CO-6, CO-7)."""
    parsed = shapes.parse_consent(resource, service.info.now)
    if isinstance(parsed, list):
        return parsed
    if parsed.status != "active":
        return [Issue("value", "Consent.status", "a new Consent is active", "CO-4")]
    if parsed.category == RELATIONSHIP:
        try:
            service._with_legal_period(parsed)  # the very check create runs (CO-7)
        except ProfileViolation as violation:
            return violation.issues()
    return []


# Each route authenticates as its create does (scope and role) before the body is read.


@router.post(f"/{MEDICATION_REQUEST}/${CODE}")
async def validate_prescription(
    request: Request, caller: PrescriptionCreate, body: FhirBody, info: Info
) -> Response:
    resource = _resource_of(body, MEDICATION_REQUEST)
    settings: Settings = request.app.state.settings
    return _answer(_prescription(resource, info.now, settings), MEDICATION_REQUEST)


@router.post(f"/{MEDICATION_DISPENSE}/${CODE}")
async def validate_dispense(caller: DispenseCreate, body: FhirBody, info: Info) -> Response:
    resource = _resource_of(body, MEDICATION_DISPENSE)
    checked = validate_medication_dispense(resource, now=info.now)
    return _answer(checked if isinstance(checked, list) else [], MEDICATION_DISPENSE)


@router.post(f"/{CLAIM}/${CODE}")
async def validate_attestation(
    request: Request,
    caller: ClaimCreate,
    body: FhirBody,
    info: Info,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    resource = _resource_of(body, CLAIM)
    settings: Settings = request.app.state.settings
    return _answer(_claim(resource, info.now, settings, idempotency_key), CLAIM)


@router.post(f"/{CONSENT}/${CODE}")
async def validate_consent(
    request: Request, caller: ConsentCreate, body: FhirBody, info: Info, session: DbSession
) -> Response:
    resource = _resource_of(body, CONSENT)
    keyring = request.app.state.keyring
    service = ConsentService(ResourceStore(session, keyring), request.app.state.settings, info)
    return _answer(_consent(resource, service), CONSENT)
