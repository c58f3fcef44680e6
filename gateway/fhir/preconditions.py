"""``If-Match`` (FHIR R4 http.html#concurrency): the version a client's update is based on.

A stale version is refused with 412 by ``ResourceStore.update`` (compare-and-set on
``version_id``); without the header the update is based on the version just read.
"""

from __future__ import annotations

from gateway.errors import BadRequest


def version_number(text: str) -> int | None:
    """A versionId as the gateway writes them (1, 2, ...), or ``None``: ASCII digits only (``²`` is
    a digit to ``str.isdigit`` but not to ``int``), few enough for the INTEGER column."""
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return int(text)


def if_match_version(header: str | None) -> int | None:
    """The versionId named by ``If-Match: W/"<versionId>"`` (quotes and ``W/`` optional)."""
    if header is None:
        return None
    version = version_number(header.strip().removeprefix("W/").strip('"'))
    if version is None:
        raise BadRequest('If-Match takes an ETag, W/"<versionId>"', expression="If-Match")
    return version
