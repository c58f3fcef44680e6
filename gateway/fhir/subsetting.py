"""``_summary`` and ``_elements`` (FHIR R4 search.html#summary, #elements): a part of each resource.

- ``_summary=true``: the elements the FHIR specification marks as summary (Σ), plus the mandatory
  ones, as the R4B definitions of ``fhir.resources`` mark them;
- ``_summary=text``: ``text``, ``id``, ``meta`` and the mandatory elements;
- ``_summary=data``: all but ``text``;
- ``_summary=count``: a search's total, no entries (``Subset.count_only``);
- ``_summary=false``: everything (the default);
- ``_elements=a,b``: those top-level elements, plus ``id``, ``meta`` and the mandatory elements
  (the spec's SHOULD); ``resourceType`` (which fhirpy adds) and names the type does not have are
  ignored, as a server may.

Every subsetted resource carries the ``SUBSETTED`` tag, so that no client stores it as the whole
record. ``_summary`` and ``_elements`` together are refused (400): the spec gives no meaning to the
combination.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import orjson
from starlette.datastructures import QueryParams

from gateway.errors import BadRequest

SUBSETTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
SUMMARY_VALUES: Final = ("true", "text", "data", "count", "false")
_ALWAYS: Final = frozenset({"resourceType", "id", "meta"})
_ELEMENT: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Subset:
    """What part of each resource a request asked for; ``None`` fields: no subsetting."""

    summary: str | None = None
    elements: frozenset[str] | None = None

    @property
    def count_only(self) -> bool:
        return self.summary == "count"

    @property
    def whole(self) -> bool:
        return self.elements is None and self.summary in (None, "false")


WHOLE: Final = Subset()


def subset_of(params: QueryParams) -> Subset:
    summaries = params.getlist("_summary")
    element_lists = params.getlist("_elements")
    if len(summaries) > 1 or len(element_lists) > 1:
        name = "_summary" if len(summaries) > 1 else "_elements"
        raise BadRequest(f"{name} may be given once", expression=name)
    if summaries and element_lists:
        raise BadRequest("_summary and _elements cannot be combined", expression="_elements")
    if summaries:
        value = summaries[0]
        if value not in SUMMARY_VALUES:
            raise BadRequest(
                f"_summary is one of {', '.join(SUMMARY_VALUES)}", expression="_summary"
            )
        return Subset(summary=value)
    if element_lists:
        names = [n.strip() for n in element_lists[0].split(",") if n.strip()]
        if not names or not all(_ELEMENT.fullmatch(n) for n in names):
            raise BadRequest(
                "_elements is a comma-separated list of element names", expression="_elements"
            )
        return Subset(elements=frozenset(names))
    return WHOLE


@cache
def _definition(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary, mandatory) top-level element names of ``resource_type`` (FHIR R4B)."""
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
        model = getattr(module, resource_type)
    except (ImportError, AttributeError):
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        name = field.alias or ""
        if extra.get("summary_element_property"):
            summary.add(name)
        # 1..1 complex elements are required fields; 1..1 primitives and choices are flagged.
        if (
            field.is_required()
            or extra.get("element_required")
            or extra.get("one_of_many_required")
        ):
            mandatory.add(name)
    return frozenset(summary), frozenset(mandatory)


def _kept(resource_type: str, subset: Subset) -> frozenset[str] | None:
    """The top-level names to keep, or ``None`` for all but ``text`` (``_summary=data``)."""
    summary, mandatory = _definition(resource_type)
    if subset.elements is not None:
        return _ALWAYS | mandatory | subset.elements
    if subset.summary == "true":
        return _ALWAYS | summary | mandatory
    if subset.summary == "text":
        return _ALWAYS | mandatory | {"text"}
    return None


def _keeps(name: str, kept: frozenset[str]) -> bool:
    # A choice element's JSON name carries its type (medicationCodeableConcept for medication[x]).
    return name in kept or (name.startswith("_") and name[1:] in kept)


def apply(body: bytes, subset: Subset) -> bytes:
    """``body`` (one resource as stored) reduced to ``subset``, tagged ``SUBSETTED``."""
    if subset.whole:
        return body
    resource: dict[str, Any] = orjson.loads(body)
    resource_type = str(resource.get("resourceType", ""))
    kept = _kept(resource_type, subset)
    if kept is None:
        reduced = {k: v for k, v in resource.items() if k != "text"}
    else:
        reduced = {k: v for k, v in resource.items() if _keeps(k, kept)}
    meta = dict(reduced.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != SUBSETTED["code"]]
    meta["tag"] = [*tags, SUBSETTED]
    reduced["meta"] = meta
    return orjson.dumps(reduced)
