"""Prescriptions shaped like the hl7-be medication guide's BeMedicationPrescription examples.

The guide's examples 01-04 (a furosemide package by AMPP every other day, an adalimumab loading
dose in three steps, a bisoprolol substance prescription by VMP group, an imported product known
only by name) name the prescriber through a contained PractitionerRole, give structured dosages
without text and write the validity as dateTimes with offsets. These builders follow those shapes
with our own products, numbers and dates: every NIHDI number and SSIN is computed here with its
check digits, and dates are relative to the ``now`` a test passes in.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Final

from fhir_profiles import systems
from fhir_profiles.dates import BRUSSELS, default_validity_end
from tests.fhir_profiles.factories import overridden

UCUM: Final = "http://unitsofmeasure.org"
TIMING_ABBREVIATION: Final = "http://terminology.hl7.org/CodeSystem/timing-abbreviation"
DOSE_RATE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
CD_HCPARTY: Final = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-hcparty"
ROLE_ID: Final = "prescriber-role"


def nihdi(person: str, competence: str) -> str:
    """An 11-digit NIHDI number ``P NNNNN CC QQQ`` with modulo-97 check digits (ID-7)."""
    assert len(person) == 6
    assert len(competence) == 3
    return f"{person}{97 - int(person) % 97:02d}{competence}"


def ssin(born: date, serial: int) -> str:
    """A national register number of someone born before 2000 (ID-1..ID-3)."""
    head = f"{born:%y%m%d}{serial:03d}"
    return f"{head}{97 - int(head) % 97:02d}"


# A general practitioner and a second physician (profession 1, competence codes 0xx), a
# physiotherapist (profession 5), and a patient.
GP: Final = nihdi("184520", "003")
OTHER_GP: Final = nihdi("175309", "004")
PHYSIOTHERAPIST: Final = nihdi("542634", "527")
PATIENT: Final = ssin(date(1961, 7, 14), 257)


def midnight(day: date) -> str:
    """Brussels midnight of ``day`` as a FHIR dateTime with its offset, as the guide writes it."""
    return datetime.combine(day, time(), BRUSSELS).isoformat()


def practitioner_role(
    number: str, *, role_id: str = ROLE_ID, system: str = systems.NIHDI
) -> dict[str, Any]:
    """The guide's contained PractitionerRole: a physician named by the NIHDI identifier."""
    return {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "code": [{"coding": [{"system": CD_HCPARTY, "code": "persphysician"}]}],
        "practitioner": {"identifier": {"system": system, "value": number}},
    }


def practitioner(
    number: str, *, practitioner_id: str, system: str = systems.NIHDI
) -> dict[str, Any]:
    """A contained Practitioner with an SSIN and an NIHDI identifier, as BePractitioner slices them."""
    return {
        "resourceType": "Practitioner",
        "id": practitioner_id,
        "identifier": [
            {"system": systems.SSIN, "value": ssin(date(1970, 2, 3), 145)},
            {"system": system, "value": number},
        ],
        "name": [{"family": "Peeters", "given": ["An"]}],
    }


def ampp(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": systems.AMPP, "code": code, "display": display}]}


def vmp_group(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": systems.VMP_GROUP, "code": code, "display": display}]}


def imported(name: str) -> dict[str, Any]:
    """Example 04's import: an AMPP coding without a code, the product named in text."""
    return {"coding": [{"system": systems.AMPP, "userSelected": False}], "text": name}


def dose_mg(value: float) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": DOSE_RATE_TYPE, "code": "ordered"}]},
        "doseQuantity": {"value": value, "unit": "mg", "system": UCUM, "code": "mg"},
    }


def every_other_day() -> list[dict[str, Any]]:
    """Example 01: only ``timing.code`` QOD, no text."""
    code = {"coding": [{"system": TIMING_ABBREVIATION, "code": "QOD"}]}
    return [{"timing": {"code": code}}]


def loading_dose() -> list[dict[str, Any]]:
    """Example 02: a first week, a second week, then a maintenance dose every two weeks."""
    one_week = {"boundsDuration": {"value": 1, "unit": "week", "system": UCUM, "code": "wk"}}
    return [
        {"sequence": 1, "timing": {"repeat": one_week}, "doseAndRate": [dose_mg(160)]},
        {"sequence": 2, "timing": {"repeat": one_week}, "doseAndRate": [dose_mg(80)]},
        {
            "sequence": 3,
            "timing": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "wk"}},
            "doseAndRate": [dose_mg(40)],
        },
    ]


def daily_for_three_months(dose: float) -> list[dict[str, Any]]:
    """Example 03: once a day for three months."""
    repeat = {
        "boundsDuration": {"value": 3, "unit": "month", "system": UCUM, "code": "mo"},
        "frequency": 1,
        "period": 1,
        "periodUnit": "d",
    }
    return [{"timing": {"repeat": repeat}, "doseAndRate": [dose_mg(dose)]}]


def guide_prescription(
    now: datetime,
    *,
    prescriber: str = GP,
    patient: str = PATIENT,
    medication: dict[str, Any] | None = None,
    dosage: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A prescription authored at ``now`` in the guide's shape (contained PractitionerRole
    requester, validity from Brussels midnight today to midnight of the default last day).

    Keyword overrides replace top-level elements; ``None`` removes one.
    """
    authored = now.astimezone(BRUSSELS)
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": "urn:example:prescribing-software", "value": "rx-42"}],
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "medicationCodeableConcept": medication or ampp("081352-03", "Furosemide 40 mg tabl. 50"),
        "subject": {"identifier": {"system": systems.SSIN, "value": patient}},
        "authoredOn": authored.isoformat(timespec="seconds"),
        "contained": [practitioner_role(prescriber)],
        "requester": {"reference": f"#{ROLE_ID}"},
        "dosageInstruction": dosage or every_other_day(),
        "dispenseRequest": {
            "validityPeriod": {
                "start": midnight(authored.date()),
                "end": midnight(default_validity_end(authored.date())),
            }
        },
    }
    return overridden(body, overrides)
