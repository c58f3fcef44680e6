"""Typed, never-raising accessors over untrusted FHIR JSON, shared by the profile rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fhir_profiles import systems
from fhir_profiles.dates import parse_fhir_datetime


def obj(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def blank(value: Any) -> bool:
    """True unless ``value`` is a string with at least one non-space character."""
    return not isinstance(value, str) or not value.strip()


def canonical_system(element: Mapping[str, Any]) -> str:
    """The element's ``system`` with legacy aliases mapped to the canonical URI (ID-22)."""
    return systems.normalise_system(text(element.get("system")) or "")


def is_pseudonymised(identifier: Mapping[str, Any]) -> bool:
    """ID-21: the extension sits on the value (``_value.extension``); accepted on the identifier."""
    value_element = obj(identifier.get("_value")) or {}
    extensions = items(value_element.get("extension")) + items(identifier.get("extension"))
    return any(
        isinstance(ext, dict) and ext.get("url") == systems.PSEUDONYMIZATION_EXTENSION
        for ext in extensions
    )


def authored_on(body: Mapping[str, Any]) -> datetime | None:
    """``authoredOn`` as an aware datetime, or ``None`` when absent or not a full dateTime."""
    raw = text(body.get("authoredOn"))
    return None if raw is None else parse_fhir_datetime(raw)
