"""FHIR JSON responses with the headers FHIR REST asks for (ETag, Last-Modified, Location).

``resource_response`` sees the request, so every family gets, without a route knowing:

- on a read or vread (GET, HEAD), ``_summary`` and ``_elements`` (``gateway.fhir.subsetting``);
- on a read or vread answering 200, conditional reads: 304 with the validators and no
  body when ``If-None-Match`` or ``If-Modified-Since`` say the client's copy is current (FHIR R4
  http.html#cread, ``gateway.fhir.conditional``);
- on a write (create, update, an operation answering a resource), ``Prefer: return=...`` (FHIR R4
  http.html#return, ``gateway.fhir.prefer``). ``Prefer`` on a read is ignored.
"""

from __future__ import annotations

from email.utils import format_datetime

from fastapi import Request
from fastapi.responses import Response

from fhir_profiles.issues import Issue
from gateway.errors import BadRequest
from gateway.fhir import conditional, prefer, subsetting
from gateway.fhir.media import FHIR_JSON_UTF8
from gateway.fhir.outcomes import outcome_body
from gateway.storage.store import StoredVersion
from gateway.urls import fhir_base

_READS = frozenset({"GET", "HEAD"})


def resource_response(
    request: Request, stored: StoredVersion, *, status: int = 200, location: bool = False
) -> Response:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": format_datetime(stored.last_updated, usegmt=True),
    }
    if location:
        headers["Location"] = (
            f"{fhir_base(request)}/{stored.resource_type}/{stored.logical_id}"
            f"/_history/{stored.version_id}"
        )
    if request.method in _READS:
        # A view computed when read (an expired prescription reads ``stopped``) may change with
        # no new version: the validators cannot vouch for the client's copy, so it is sent again.
        if (
            status == 200
            and not stored.computed
            and conditional.not_modified(request, stored.etag, stored.last_updated)
        ):
            return Response(status_code=304, headers=headers)
        body = subsetting.apply(stored.body, _read_subset(request))
        return Response(body, status_code=status, media_type=FHIR_JSON_UTF8, headers=headers)
    wanted = prefer.return_preference(request)
    if wanted is not None:
        headers[prefer.PREFERENCE_APPLIED] = f"return={wanted}"
    if wanted == "minimal":
        return Response(b"", status_code=status, headers=headers)
    if wanted == "OperationOutcome":
        done = Issue(
            severity="information",
            code="informational",
            expression="",
            diagnostics=_what_was_done(request, stored, status, location),
        )
        body = outcome_body([done])
        return Response(body, status_code=status, media_type=FHIR_JSON_UTF8, headers=headers)
    return Response(stored.body, status_code=status, media_type=FHIR_JSON_UTF8, headers=headers)


def _read_subset(request: Request) -> subsetting.Subset:
    """``_summary`` / ``_elements`` on a read (FHIR R4 search.html#summary applies to reads too)."""
    subset = subsetting.subset_of(request.query_params)
    if subset.count_only:
        raise BadRequest("_summary=count is for searches", expression="_summary")
    return subset


def _what_was_done(request: Request, stored: StoredVersion, status: int, location: bool) -> str:
    """The sentence of ``Prefer: return=OperationOutcome``: ids and versions, never content."""
    target = f"{stored.resource_type}/{stored.logical_id}"
    version = f"version {stored.version_id}"
    operation = request.scope["path"].rsplit("/", 1)[-1]
    if operation.startswith("$"):
        return f"{operation} done on {target}, now at {version}"
    if status == 201:
        return f"created {target} at {version}"
    if status == 202:
        return f"accepted {target} at {version} for processing"
    if request.method == "POST" and location:
        return f"{target} at {version} already exists (If-None-Exist): nothing was created"
    return f"updated {target}, now at {version}"


def bundle_response(body: bytes) -> Response:
    return Response(body, media_type=FHIR_JSON_UTF8)
