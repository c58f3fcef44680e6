"""``GET /fhir/metadata`` and ``GET /fhir/OperationDefinition[/id]``: what the server implements,
read from the routes registered (``served``) and the families' descriptions (``catalogue``).

Both are public, like every FHIR server's conformance resources: they describe the API and hold no
one's data (docs/capability.md). The package sits at the top with the app
(docs/architecture.md 3b), since it imports every family.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.capability.catalogue import OPERATION_DEFINITION
from gateway.capability.definitions import definitions
from gateway.capability.statement import capability_statement
from gateway.errors import BadRequest, NotFound
from gateway.fhir.media import FHIR_JSON
from gateway.urls import fhir_base, public_base

__all__ = ["router"]

router = APIRouter()
# What GET /OperationDefinition lets through besides ``url``: the answer's format and layout
# (FHIR R4 http.html#parameters), which the /fhir router's negotiation reads.
_FORMAT_PARAMETERS = frozenset({"_format", "_pretty"})


def _fhir(body: object) -> Response:
    return Response(orjson.dumps(body), media_type=FHIR_JSON)


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    settings = request.app.state.settings
    statement = capability_statement(
        request.app.routes,
        fhir_base(request),
        public_base(request),
        default_page=settings.default_page_size,
        max_page=settings.max_page_size,
    )
    return _fhir(statement)


@router.get(f"/{OPERATION_DEFINITION}")
async def search_definitions(request: Request) -> Response:
    """Every definition, or the one whose canonical ``url`` is given (FHIR R4 search.html)."""
    params = request.query_params
    for name in params:
        if name != "url" and name not in _FORMAT_PARAMETERS:
            raise BadRequest(
                f"unknown or unsupported search parameter {name[:40]!r}; supported: url",
                expression=name[:40],
            )
    urls = params.getlist("url")
    base = fhir_base(request)
    found = [
        d for d in definitions(request.app.routes, base).values() if not urls or d["url"] in urls
    ]
    query = urlencode(params.multi_items())
    bundle: dict[str, object] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "link": [
            {
                "relation": "self",
                "url": f"{base}/{OPERATION_DEFINITION}" + (f"?{query}" if query else ""),
            }
        ],
    }
    if found:  # FHIR JSON has no empty arrays (json.html)
        bundle["entry"] = [
            {"fullUrl": d["url"], "resource": d, "search": {"mode": "match"}} for d in found
        ]
    return _fhir(bundle)


@router.get(f"/{OPERATION_DEFINITION}/{{logical_id}}")
async def read_definition(request: Request, logical_id: str) -> Response:
    found = definitions(request.app.routes, fhir_base(request)).get(logical_id)
    if found is None:
        raise NotFound(f"{OPERATION_DEFINITION}/{logical_id} is not known")
    return _fhir(found)
