"""``$set-visibility`` (DESIGN.md 4c; domain RX-13, RX-14): the body, and the new choice.

``Parameters`` with ``pharmacies`` = ``all`` | ``one`` | ``none``, ``pharmacy`` = the pharmacy's
organisation NIHDI (an Identifier, or its digits) when ``one``, ``prescribers`` = ``open`` |
``closed``. A part left out keeps its current value. The decision judges what the caller asks to
set (``Change.requested``): an author who only closes the prescription to other prescribers does
not "choose one pharmacy" because the patient chose one earlier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from consent import PharmacyVisibility, PrescriberVisibility, Visibility
from fhir_profiles import systems
from gateway.errors import BadRequest

_NAMES = frozenset({"pharmacies", "pharmacy", "prescribers"})
_ORG_NIHDI = re.compile(r"^[0-9]{8,11}$")


@dataclass(frozen=True)
class Change:
    pharmacies: PharmacyVisibility | None
    pharmacy: str | None
    prescribers: PrescriberVisibility | None

    @property
    def requested(self) -> Visibility:
        """What is asked for, omitted parts at their defaults (the decision's ``visibility``)."""
        return Visibility(
            pharmacies=self.pharmacies or PharmacyVisibility.ALL,
            pharmacy=self.pharmacy,
            prescribers=self.prescribers or PrescriberVisibility.OPEN,
        )

    def applied_to(self, current: Visibility) -> Visibility:
        pharmacies = self.pharmacies or current.pharmacies
        return Visibility(
            pharmacies=pharmacies,
            pharmacy=(self.pharmacy if self.pharmacies else current.pharmacy)
            if pharmacies is PharmacyVisibility.ONE
            else None,
            prescribers=self.prescribers or current.prescribers,
        )


def _code(parameter: dict[str, Any], name: str) -> str:
    value = parameter.get("valueCode", parameter.get("valueString"))
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} needs a valueCode", expression=f"Parameters.parameter.{name}")
    return value


def _pharmacy(parameter: dict[str, Any]) -> str:
    where = "Parameters.parameter.pharmacy"
    identifier = parameter.get("valueIdentifier")
    if isinstance(identifier, dict):
        system = identifier.get("system")
        if system is not None and systems.normalise_system(str(system)) not in (
            systems.NIHDI_ORGANIZATION,
            systems.NIHDI,
        ):
            raise BadRequest("pharmacy: an NIHDI organisation identifier", expression=where)
        value = identifier.get("value")
    else:
        value = parameter.get("valueString")
    if not isinstance(value, str) or not _ORG_NIHDI.match(value):
        raise BadRequest("pharmacy: the organisation NIHDI number (8-11 digits)", expression=where)
    return value


def parse_change(body: dict[str, Any]) -> Change:
    if body.get("resourceType") != "Parameters":
        raise BadRequest("$set-visibility takes a Parameters resource", expression="resourceType")
    parameters = body.get("parameter")
    if not isinstance(parameters, list) or not parameters:
        raise BadRequest("$set-visibility needs parameters", expression="Parameters.parameter")
    seen: dict[str, dict[str, Any]] = {}
    for parameter in parameters:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in _NAMES:
            raise BadRequest(
                "parameters are pharmacies, pharmacy and prescribers",
                expression="Parameters.parameter",
            )
        if name in seen:
            raise BadRequest(f"{name} may be given once", expression=f"Parameters.parameter.{name}")
        seen[name] = parameter
    try:
        pharmacies = (
            PharmacyVisibility(_code(seen["pharmacies"], "pharmacies"))
            if "pharmacies" in seen
            else None
        )
        prescribers = (
            PrescriberVisibility(_code(seen["prescribers"], "prescribers"))
            if "prescribers" in seen
            else None
        )
    except ValueError as exc:
        raise BadRequest(
            "pharmacies is all | one | none; prescribers is open | closed",
            expression="Parameters.parameter",
        ) from exc
    pharmacy = _pharmacy(seen["pharmacy"]) if "pharmacy" in seen else None
    if (pharmacies is PharmacyVisibility.ONE) != (pharmacy is not None):
        raise BadRequest(
            "pharmacy is given exactly when pharmacies is one",
            expression="Parameters.parameter.pharmacy",
        )
    return Change(pharmacies, pharmacy, prescribers)
