"""``$set-visibility`` (docs/architecture.md 4c; domain RX-13, RX-14): the body, and the new choice.

``Parameters`` with ``pharmacies`` = ``all`` | ``one`` | ``none``, ``pharmacy`` = the pharmacy's
organisation NIHDI (an Identifier, or its digits) when ``one``, ``prescribers`` = ``open`` |
``closed`` | ``gmf`` (the GPs of the GMF practice, RX-14). A part left out keeps its current value. The decision judges what the caller asks to
set (``Change.requested``): an author who only closes the prescription to other prescribers does
not "choose one pharmacy" because the patient chose one earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consent import PharmacyVisibility, PrescriberVisibility, Visibility
from gateway.errors import BadRequest
from gateway.fhir import parameters

_NAMES = frozenset({"pharmacies", "pharmacy", "prescribers"})


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


def parse_change(body: dict[str, Any]) -> Change:
    seen = parameters.read(body, "$set-visibility", _NAMES)
    if not seen:
        raise BadRequest("$set-visibility needs parameters", expression="Parameters.parameter")
    try:
        pharmacies = (
            PharmacyVisibility(parameters.code(seen["pharmacies"], "pharmacies"))
            if "pharmacies" in seen
            else None
        )
        prescribers = (
            PrescriberVisibility(parameters.code(seen["prescribers"], "prescribers"))
            if "prescribers" in seen
            else None
        )
    except ValueError as exc:
        raise BadRequest(
            "pharmacies is all | one | none; prescribers is open | closed | gmf",
            expression="Parameters.parameter",
        ) from exc
    pharmacy = (
        parameters.organisation_nihdi(seen["pharmacy"], "pharmacy") if "pharmacy" in seen else None
    )
    if (pharmacies is PharmacyVisibility.ONE) != (pharmacy is not None):
        raise BadRequest(
            "pharmacy is given exactly when pharmacies is one",
            expression="Parameters.parameter.pharmacy",
        )
    return Change(pharmacies, pharmacy, prescribers)
