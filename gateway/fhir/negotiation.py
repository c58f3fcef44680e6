"""FHIR REST content negotiation and request bodies (FHIR R4 http.html#mime-type).

JSON only: ``application/fhir+json``, ``application/json`` or DSTU2's ``application/json+fhir``
in, ``application/fhir+json; charset=utf-8`` out. Any other Content-Type is 415 (XML named as
such), an Accept or ``_format`` that admits no JSON is 406, a body over the limit is 413, and a
body that is not a JSON object keeping FHIR's JSON rules (``json_rules``), or not of the expected
resourceType, is 400. Every route that takes a body reads it here.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from gateway.errors import (
    BadRequest,
    ClientClosedRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.fhir import json_rules
from gateway.fhir.media import FHIR_JSON, LEGACY_FHIR_JSON, XML_TYPES

ACCEPTED_BODY_TYPES = frozenset({FHIR_JSON, "application/json", LEGACY_FHIR_JSON})
# What an Accept header may name for us to answer in FHIR JSON (`_format` values included).
_ACCEPTABLE = frozenset({*ACCEPTED_BODY_TYPES, "application/*", "*/*", "json", "fhir+json"})
_PRETTY = frozenset({"true", "false"})
log = structlog.get_logger("gateway.http")


def _media_types(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((pieces[0].lower(), quality))
    return ranges


async def check_accept(request: Request) -> None:  # async: no thread-pool hop
    """406 unless the client accepts FHIR JSON (``_format`` overrides Accept, FHIR R4
    http.html#mime-type); 400 for a ``_pretty`` other than true or false (http.html#parameters:
    ``gateway.fhir.pretty`` indents the answer)."""
    params = request.query_params
    pretty = params.getlist("_pretty")
    if len(pretty) > 1 or any(value.lower() not in _PRETTY for value in pretty):
        raise BadRequest("_pretty takes true or false, once", expression="_pretty")
    formats = params.getlist("_format")
    if formats:
        # An unencoded ``+`` (``_format=application/fhir+json`` typed by hand) arrives as a space.
        kinds = {f.split(";", 1)[0].strip().lower().replace(" ", "+") for f in formats}
        if not kinds <= _ACCEPTABLE:
            raise NotAcceptable(
                ("XML is not supported" if kinds & XML_TYPES else "only JSON is supported")
                + ": use _format=json",
                expression="_format",
            )
        return
    header = request.headers.get("accept")
    if not header:
        return
    ranges = _media_types(header)
    if not any(kind in _ACCEPTABLE and q > 0 for kind, q in ranges):
        raise NotAcceptable(
            ("XML is not supported: " if any(kind in XML_TYPES for kind, _ in ranges) else "")
            + "only application/fhir+json and application/json can be returned"
        )


async def read_json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read within the size limit (413), checked for media type (415)
    and for FHIR's JSON rules (400, ``json_rules``)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_BODY_TYPES:
        raise UnsupportedMediaType(
            ("XML is not supported: " if media_type in XML_TYPES else "")
            + "send application/fhir+json (or application/json); got "
            + (repr(media_type[:60]) if media_type else "no Content-Type")
        )
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer: not an error of ours, so no traceback (just a fact).
        log.info("client_disconnected", received_bytes=size)
        raise ClientClosedRequest("the client closed the connection while sending") from None
    return json_rules.loads(b"".join(chunks))


async def read_operation_body(request: Request) -> dict[str, Any]:
    """An operation's ``Parameters`` body, which may be left out when it has no parameters
    (FHIR R4 operations.html: a POST with no parameters may have an empty body)."""
    declared = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if (declared is None or declared == "0") and not chunked:
        return {"resourceType": "Parameters"}
    return await read_json_body(request)


def expect_resource_type(body: dict[str, Any], resource_type: str) -> None:
    found = body.get("resourceType")
    if found != resource_type:
        raise BadRequest(
            f"resourceType must be {resource_type}"
            + ("" if found is None else f", not {str(found)[:40]!r}"),
            expression="resourceType",
        )


FhirBody = Annotated[dict[str, Any], Depends(read_json_body)]
OperationBody = Annotated[dict[str, Any], Depends(read_operation_body)]
