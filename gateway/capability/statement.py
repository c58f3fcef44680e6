"""The CapabilityStatement (FHIR R4 capabilitystatement.html), built from the routes registered.

Interactions and operations are what the routes serve (``served``); search parameters are the
names each family's search accepts (the table it checks, ``TypeDescription.search_names``) plus
the shared ones ``gateway.fhir.search.COMMON`` lets through; ``versioning`` is ``versioned`` only
where vread exists (``versioned-update`` when the update also honours If-Match), else
``no-version``. Every read answers through ``gateway.fhir.responses.resource_response``, which
honours If-None-Match and If-Modified-Since: ``conditionalRead`` is ``full-support`` wherever a stored
record is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from starlette.routing import BaseRoute

from gateway import __version__
from gateway.auth.state import TOKEN_PATH
from gateway.capability.catalogue import (
    DESCRIPTIONS,
    OPERATION_DEFINITION,
    PUBLISHER,
    STARTED,
    offered,
    served_types,
)
from gateway.capability.served import Served, system_operations
from gateway.claims.capability import SYSTEM_OPERATIONS
from gateway.fhir import search
from gateway.fhir.conformance import SearchParam, TypeDescription
from gateway.fhir.media import FHIR_JSON

# Parameters of every search that are no search parameters: paging state, the answer's format
# and layout (FHIR R4 http.html#parameters). They are not listed.
_NOT_SEARCH_PARAMETERS: Final = frozenset({"_cursor", "_format", "_pretty"})
# FHIR R4 search.html#all and #summary: the parameters every resource may support, with their
# type and the part of the specification that says how they work.
_COMMON: Final = {
    "_id": ("token", "the logical id (FHIR R4 search.html#id)"),
    "_lastUpdated": ("date", "when the current version was written; " + search.DATE_DOCUMENTATION),
    "_sort": ("string", "the order of the results (FHIR R4 search.html#sort)"),
    "_summary": ("token", "a summary of each resource (FHIR R4 search.html#summary)"),
    "_elements": ("string", "only these elements of each resource (FHIR R4 search.html#elements)"),
    "_total": ("token", "how the total is counted (FHIR R4 search.html#total)"),
}


def _common_params(default_page: int, max_page: int) -> list[SearchParam]:
    known = {
        **_COMMON,
        "_count": (
            "number",
            f"page size (default {default_page}, at most {max_page}); follow the Bundle's next "
            "link (FHIR R4 search.html#count)",
        ),
    }
    names = sorted(set(search.COMMON) - _NOT_SEARCH_PARAMETERS)
    return [SearchParam(name, *known.get(name, ("special", ""))) for name in names]


def _search_params(
    described: TypeDescription | None, default_page: int, max_page: int
) -> list[dict[str, Any]]:
    if described is None:
        return []
    params: list[SearchParam] = []
    for name in dict.fromkeys(n.partition(":")[0] for n in described.search_names):
        # The documented entry; a name the family has not documented is still listed (accepted).
        params.append(described.search_param(name) or SearchParam(name, "special", ""))
    if described.common_search:
        params.extend(_common_params(default_page, max_page))
    return [param.entry() for param in params]


def _versioning(entry: Served) -> str:
    if "vread" not in entry.interactions:
        return "no-version"  # no meta.versionId either (AuditEvent)
    return "versioned-update" if entry.versioned_update else "versioned"


def resource_entry(
    resource_type: str, entry: Served, base: str, default_page: int, max_page: int
) -> dict[str, Any]:
    described = DESCRIPTIONS.get(resource_type)
    out: dict[str, Any] = {"type": resource_type}
    if described is not None and described.profile:
        out["profile"] = described.profile
    if described is not None:
        out["documentation"] = described.documentation
    out["interaction"] = [{"code": code} for code in entry.ordered_interactions()]
    out["versioning"] = _versioning(entry)
    out["readHistory"] = "vread" in entry.interactions  # past versions through vread
    if "read" in entry.interactions and resource_type != OPERATION_DEFINITION:
        # Stored records: 304 on If-None-Match and If-Modified-Since. The definitions are
        # built from the routes on each read and carry no validators.
        out["conditionalRead"] = "full-support"
    if "update" in entry.interactions:
        out["updateCreate"] = False  # an update names an existing resource (404 otherwise)
    if "create" in entry.interactions:
        out["conditionalCreate"] = entry.conditional_create
    if "update" in entry.interactions or entry.conditional_update:
        out["conditionalUpdate"] = entry.conditional_update
    out["conditionalDelete"] = "single" if entry.conditional_delete else "not-supported"
    if "search-type" in entry.interactions:
        params = _search_params(described, default_page, max_page)
        if params:
            out["searchParam"] = params
    operations = [
        {"name": op.code, "definition": op.url(base), "documentation": op.spec.documentation}
        for op in offered(resource_type, entry)
    ]
    if operations:
        out["operation"] = operations
    return out


def _security(public: str) -> dict[str, Any]:
    """SMART on FHIR security (FHIR R4 capabilitystatement, SMART App Launch "oauth-uris")."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 client credentials with private_key_jwt (certificate from the gateway's CA)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": public + TOKEN_PATH}],
            }
        ],
        "description": "Every interaction needs a bearer access token except metadata and the "
        f"{OPERATION_DEFINITION} reads; see {public}/.well-known/smart-configuration",
    }


def capability_statement(
    routes: Sequence[BaseRoute], base: str, public: str, *, default_page: int, max_page: int
) -> dict[str, Any]:
    resources = [
        resource_entry(resource_type, entry, base, default_page, max_page)
        for resource_type, entry in served_types(routes)
    ]
    rest: dict[str, Any] = {"mode": "server", "security": _security(public), "resource": resources}
    # System-level operations, by the specification's own definitions (FHIR R4 operations.html).
    operations = [
        {
            "name": code,
            "definition": SYSTEM_OPERATIONS[code][0],
            "documentation": SYSTEM_OPERATIONS[code][1],
        }
        for code in system_operations(routes)
        if code in SYSTEM_OPERATIONS
    ]
    if operations:
        rest["operation"] = operations
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STARTED,
        "publisher": PUBLISHER,
        "kind": "instance",
        "software": {"name": "ehealth-gateway", "version": __version__},
        "implementation": {"description": "Belgian eHealth exchange gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [rest],
    }
