"""Conditional reads (FHIR R4 http.html#cread): ``If-None-Match`` and ``If-Modified-Since``.

A client that holds a resource asks again with the validators it was given; when they still hold
the answer is 304 with no body. Evaluated as RFC 9110 13.2.2 orders them: ``If-None-Match``, when
present, decides alone (weak comparison, 13.1.2); otherwise ``If-Modified-Since``, ignored when it
is not a valid HTTP date or lies in the future (13.1.3). Only reads and vreads (GET, HEAD) answering
200 are conditional (``gateway.fhir.responses``).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

from fastapi import Request


def _opaque(tag: str) -> str:
    """An entity tag's opaque part: ``W/"3"`` and ``"3"`` are both ``3`` to the weak comparison
    (RFC 9110 8.8.3.2); an unquoted ``3`` is read the same way, as ``If-Match`` is."""
    tag = tag.strip()
    if tag[:2] in ("W/", "w/"):
        tag = tag[2:]
    return tag.strip().strip('"')


def etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match: header`` names ``etag``: ``*`` (any current version) or one of a list."""
    if header.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(tag) == current for tag in header.split(",") if tag.strip())


def not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    """True when the client's copy, named by its validators, is the current one (304)."""
    tags = request.headers.getlist("if-none-match")
    if tags:
        return etag_matches(",".join(tags), etag)
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # not an HTTP date: ignored (RFC 9110 13.1.3)
    if moment.tzinfo is None:
        return False  # HTTP dates are GMT; a date without a zone is none of them
    now: datetime = request.app.state.clock()
    if moment > now:
        return False  # a date in the future is invalid (RFC 9110 13.1.3)
    # Last-Modified is sent in whole seconds: compare at that precision.
    return last_modified.replace(microsecond=0) <= moment
