"""The forms in which clients name a resource of this server or a search on it.

- A reference search parameter (FHIR R4 search.html#reference) is ``Type/id``, a bare ``id`` or
  this server's absolute URL ``[base]/Type/id``; every reference parameter takes all three.
- ``If-None-Exist`` (FHIR R4 http.html#ccreate) is a search's query: clients send it bare
  (``identifier=...``), after ``?``, as ``Type?...`` (the HAPI client) or as ``[base]/Type?...``.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams

from fhir_profiles.ids import FHIR_ID
from gateway.errors import BadRequest

IF_NONE_EXIST = "If-None-Exist"


def _local_path(value: str, base: str | None) -> str | None:
    """``value`` without this server's base (``None`` if it is another server's URL)."""
    if "://" not in value:
        return value.removeprefix("/fhir/") if value.startswith("/fhir/") else value
    if base is None or not value.startswith(base.rstrip("/") + "/"):
        return None
    return value[len(base.rstrip("/")) + 1 :]


def reference_id(value: str, name: str, resource_type: str, base: str | None) -> str:
    """The logical id ``value`` names, in any of the three forms, of a ``resource_type``."""
    path = _local_path(value.strip(), base)
    if path is None:
        raise BadRequest(f"{name}: a {resource_type} of this server", expression=name)
    logical_id = path.removeprefix(f"{resource_type}/")
    if not FHIR_ID.fullmatch(logical_id):  # another type, a version, a NUL that PostgreSQL refuses
        raise BadRequest(
            f"{name}: {resource_type}/[id], the id, or this server's URL of it", expression=name
        )
    return logical_id


def condition_query(header: str, resource_type: str, base: str | None) -> QueryParams:
    """The search ``If-None-Exist`` asks for, whatever form the client wrote it in."""
    text = header.strip()
    where, question, query = text.partition("?")
    if question:
        path = _local_path(where, base) if where else resource_type
        if path not in (resource_type, f"/{resource_type}"):
            raise BadRequest(
                f"{IF_NONE_EXIST} must search {resource_type} on this server",
                expression=IF_NONE_EXIST,
            )
    else:
        query = text
    params = QueryParams(query)
    if not params:
        raise BadRequest(f"{IF_NONE_EXIST} names no search parameter", expression=IF_NONE_EXIST)
    return params


# What a create's URL may carry that is no search: how to answer (http.html#parameters).
_ANSWER_PARAMETERS = frozenset({"_format", "_pretty"})


def create_condition(header: str | None, query: QueryParams) -> str | None:
    """A create's condition: ``If-None-Exist`` when sent (even empty: then refused), else the
    URL's query (``condition_in_query``)."""
    return header if header is not None else condition_in_query(query)


def condition_in_query(query: QueryParams) -> str | None:
    """A create's condition sent as the URL's query (``POST [type]?identifier=...``, as fhirpy's
    ``create(identifier=...)`` does) rather than in ``If-None-Exist``; ``None``: none."""
    searched = [(k, v) for k, v in query.multi_items() if k not in _ANSWER_PARAMETERS]
    return str(QueryParams(searched)) if searched else None
