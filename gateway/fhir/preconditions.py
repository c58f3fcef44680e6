"""``If-Match`` (FHIR R4 http.html#concurrency): the version a client's update is based on.

A stale version is refused with 412 by ``ResourceStore.update`` (compare-and-set on
``version_id``); without the header the update is based on the version just read.
"""

from __future__ import annotations

from gateway.errors import BadRequest


def if_match_version(header: str | None) -> int | None:
    """The versionId named by ``If-Match: W/"<versionId>"`` (quotes and ``W/`` optional)."""
    if header is None:
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise BadRequest('If-Match takes an ETag, W/"<versionId>"', expression="If-Match")
    return int(tag)
