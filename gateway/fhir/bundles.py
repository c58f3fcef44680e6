"""Bundles (searchset, history) and the URLs inside them.

Stored bodies are embedded as ``orjson.Fragment`` so a search never re-parses or re-serialises them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request

from fhir_profiles.issues import Issue
from gateway.fhir import handling, search_post, subsetting
from gateway.fhir.outcomes import operation_outcome
from gateway.storage.store import Page, StoredVersion
from gateway.urls import fhir_base


def _entry(
    base: str, stored: StoredVersion, subset: subsetting.Subset = subsetting.WHOLE, **extra: Any
) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{stored.resource_type}/{stored.logical_id}",
        "resource": orjson.Fragment(subsetting.apply(stored.body, subset)),
        **extra,
    }


def searchset(request: Request, resource_type: str, page: Page) -> bytes:
    base = fhir_base(request)
    left_out = handling.ignored()  # lenient handling: not used, so not in the links
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k != "_cursor" and k not in left_out
    ]
    if search_post.sealed_links(request):  # asked by POST: the parameters stay out of the links
        params = [
            (search_post.SEALED, search_post.seal(request.app.state.keyring, resource_type, params))
        ]
    cursor = request.query_params.get("_cursor")
    here = [*params, ("_cursor", cursor)] if cursor else params
    links = [{"relation": "self", "url": f"{base}/{resource_type}?{urlencode(here)}"}]
    if page.next_cursor is not None:
        query = urlencode([*params, ("_cursor", page.next_cursor.encode())])
        links.append({"relation": "next", "url": f"{base}/{resource_type}?{query}"})
    subset = subsetting.subset_of(request.query_params)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:  # not counted under _total=none
        bundle["total"] = page.total
    bundle["link"] = links
    entries = [] if subset.count_only else page.items
    bundle_entries = [_entry(base, i, subset, search={"mode": "match"}) for i in entries]
    told = [*_ignored(left_out), *page.notes]  # one OperationOutcome says all of it
    if told:
        bundle_entries.append({"resource": operation_outcome(told), "search": {"mode": "outcome"}})
    if bundle_entries:  # no empty arrays in FHIR JSON
        bundle["entry"] = bundle_entries
    return orjson.dumps(bundle)


def _ignored(names: list[str]) -> list[Issue]:
    """What lenient handling left out (FHIR R4 search.html#errors)."""
    return [
        Issue(
            severity="warning",
            code="not-supported",
            expression=name[:40],
            diagnostics=f"search parameter {name[:40]!r} is not supported and was ignored",
        )
        for name in names
    ]


def history(request: Request, versions: list[StoredVersion]) -> bytes:
    base = fhir_base(request)
    entries = []
    for stored in versions:
        method = "POST" if stored.version_id == 1 else "PUT"
        url = (
            stored.resource_type
            if method == "POST"
            else f"{stored.resource_type}/{stored.logical_id}"
        )
        entries.append(
            _entry(
                base,
                stored,
                request={"method": method, "url": url},
                response={
                    "status": "201 Created" if method == "POST" else "200 OK",
                    "etag": stored.etag,
                    "lastModified": stored.last_updated.isoformat(),
                },
            )
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(versions),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": entries,
    }
    return orjson.dumps(bundle)
