"""Synthetic demo people and prescriptions. Every number passes its check digits (ID-2, ID-7) and
none belongs to a real person (they are the worked examples of the domain document or made up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from fhir_profiles import systems
from fhir_profiles.ages import ssin_born_on
from fhir_profiles.dates import BRUSSELS, brussels_date
from fhir_profiles.rules.claim_codes import ATTESTATION_TYPE


@dataclass(frozen=True)
class DemoPatient:
    ssin: str
    name: str
    fund_code: str
    card_number: str  # their current eID card (12 digits, mod-97 check digits: CO-2, RX-18 b)
    # the number their sickness fund gave them (mutualities/data/members.json): a claim may name
    # the patient by it, with the fund as assigner, instead of the SSIN
    membership_number: str | None = None


@dataclass(frozen=True)
class DemoProfessional:
    """A demo OAuth client: ``gateway demo`` issues it a certificate and registers it."""

    client_id: str
    role: str
    nihdi: str | None  # professional NIHDI (prescriber), organisation NIHDI (pharmacy), or none
    name: str
    organisation: str | None = None


PATIENTS = (
    DemoPatient("85073003328", "Jan Peeters", "100", "592000000283", "1000000001328"),
    DemoPatient("93051822361", "Marie Dubois", "300", "592000000384", "3000000001361"),
    DemoPatient("01010100126", "Lotte Janssens", "500", "592000000485", "5000000001126"),
)

NURSING_HOME_PHARMACY = "06076543"  # a nursing home's pharmacy: the holder of a mandate (RX-16)

PROFESSIONALS = (
    DemoProfessional("demo-gp-1", "prescriber", "19234011004", "Dr. An Claes", "Cabinet Claes"),
    DemoProfessional(
        "demo-gp-2", "prescriber", "12345625004", "Dr. Luc Lambert", "Groepspraktijk Lambert"
    ),
    DemoProfessional(
        "demo-pharmacy-1", "pharmacist", "06012345", "Pharmacie du Centre", "Pharmacie du Centre"
    ),
    DemoProfessional(
        "demo-pharmacy-2", "pharmacist", "06054321", "Apotheek De Linde", "Apotheek De Linde"
    ),
    DemoProfessional(
        "demo-pharmacy-nursing-home",
        "pharmacist",
        NURSING_HOME_PHARMACY,
        "Pharmacie de la Résidence Les Tilleuls",
        "Résidence Les Tilleuls",
    ),
    DemoProfessional("demo-admin", "admin", None, "Gateway operator", "Gateway operations"),
)


@dataclass(frozen=True)
class DemoPractice:
    """A GMF practice: the GPs who share it (RX-14), by the demo clients' NIHDI numbers."""

    practice_id: str
    name: str
    members: tuple[str, ...]


# RX-14: the two demo GPs share a GMF practice, so a prescription the patient shows to "the GMF"
# is read by both (each still under consent and his relationship).
GMF_PRACTICES = (
    DemoPractice(
        "demo-gmf-1",
        "Groepspraktijk Claes-Lambert",
        tuple(p.nihdi for p in PROFESSIONALS if p.role == "prescriber" and p.nihdi),
    ),
)


@dataclass(frozen=True)
class DemoMandate:
    """A mandate (RX-16, PO-4): the mandator (SSIN) lets a demo patient (``proxy``, by SSIN) or a
    demo pharmacy (``professional``, its organisation NIHDI) act for him, for these actions."""

    local_id: str
    mandator: str
    role: str  # proxy | professional
    holder: str
    actions: tuple[str, ...]


# Marie lets Lotte collect her medicines and see her prescriptions (Jan holds none of hers: he
# shows a patient refused another's pages); the nursing home's pharmacy collects Lotte's (a
# pharmacy's mandate is collect and view only, RX-16).
MANDATES = (
    DemoMandate("demo-mandate-1", PATIENTS[1].ssin, "proxy", PATIENTS[2].ssin, ("collect", "view")),
    DemoMandate(
        "demo-mandate-2",
        PATIENTS[2].ssin,
        "professional",
        NURSING_HOME_PHARMACY,
        ("collect", "view"),
    ),
)

# PO-3: Jan Peeters is the parent of Noor, born 15 June 2020 (under 12 until 15 June 2032); she
# has no portal login of her own, he acts for her. In Belgium the link comes from the National
# Register's household composition; the demo gives it to ``gateway family`` itself.
CHILD = DemoPatient(ssin_born_on(date(2020, 6, 15), 102), "Noor Peeters", "100", "592000000586")
FAMILY = ((PATIENTS[0].ssin, CHILD.ssin),)  # (parent, child)

# A registering software's identifier, as a client gives one (urn:ehealth-gateway: ones are the
# gateway's own and not searchable), so that a second start finds the mandate it gave.
DEMO_MANDATE_SYSTEM = "https://demo.ehealth-gateway.example/NamingSystem/mandate"


def mandate(demo: DemoMandate, now: datetime) -> dict[str, Any]:
    """The mandate as its mandator gives it (README API notes): from the start of the Brussels day
    it is seeded on, no end."""
    holder_system = systems.SSIN if demo.role == "proxy" else systems.NIHDI_ORGANIZATION
    start = datetime.combine(brussels_date(now), time(), BRUSSELS)
    return {
        "resourceType": "Consent",
        "identifier": [{"system": DEMO_MANDATE_SYSTEM, "value": demo.local_id}],
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "urn:ehealth-gateway:consent-kind", "code": "mandate"}]}
        ],
        "patient": {"identifier": {"system": systems.SSIN, "value": demo.mandator}},
        "provision": {
            "type": "permit",
            "period": {"start": start.isoformat()},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "urn:ehealth-gateway:mandate-role", "code": demo.role}
                        ]
                    },
                    "reference": {"identifier": {"system": holder_system, "value": demo.holder}},
                }
            ],
            "action": [
                {"coding": [{"system": "urn:ehealth-gateway:mandate-action", "code": action}]}
                for action in demo.actions
            ],
        },
    }


DEMO_IDENTIFIER_SYSTEM = "urn:ehealth-gateway:demo-prescription"

# (local id, patient index, prescriber index, medication concept, dosage text)
_PRESCRIPTIONS: tuple[tuple[str, int, int, dict[str, Any], str], ...] = (
    (
        "demo-1",
        0,
        0,
        {"coding": [{"system": systems.CNK, "code": "1439562", "display": "Lasix 40 mg tabl. 50"}]},
        "1 tablet every morning",
    ),
    (
        "demo-2",
        0,
        1,
        {
            "coding": [
                {"system": systems.VMP_GROUP, "code": "3889", "display": "bisoprolol oraal 2,5 mg"}
            ]
        },
        "1 tablet a day",
    ),
    (
        "demo-3",
        1,
        0,
        {"text": "Acidum salicylicum 1 g, vaselinum album q.s. ad 100 g"},
        "apply twice a day on the affected skin",
    ),
    (
        "demo-4",
        2,
        1,
        {
            "coding": [
                {
                    "system": systems.CNK,
                    "code": "2153421",
                    "display": "Amoxicilline 500 mg caps. 16",
                }
            ]
        },
        "1 capsule three times a day for 8 days",
    ),
    (
        "demo-5",
        3,  # CHILD: her father acts for her (PO-3)
        0,
        {"text": "Paracetamolum 120 mg/5 ml, sirupus simplex q.s. ad 100 ml"},
        "5 ml up to four times a day, at least 4 hours apart",
    ),
)


def _subjects() -> tuple[DemoPatient, ...]:
    return (*PATIENTS, CHILD)


def prescriptions(now: datetime) -> list[tuple[str, DemoProfessional, dict[str, Any]]]:
    """(local id, author, body) for each demo prescription, authored ``now`` and valid from that
    day in Brussels (RX-12: validity never starts before the Brussels day the prescription is
    written, which at night is not the UTC date)."""
    today = brussels_date(now)
    result = []
    for local_id, patient_index, prescriber_index, medication, dosage in _PRESCRIPTIONS:
        author = PROFESSIONALS[prescriber_index]
        body = {
            "resourceType": "MedicationRequest",
            "identifier": [{"system": DEMO_IDENTIFIER_SYSTEM, "value": local_id}],
            "status": "active",
            "intent": "order",
            "subject": {
                "identifier": {"system": systems.SSIN, "value": _subjects()[patient_index].ssin}
            },
            "authoredOn": now.isoformat(timespec="seconds"),
            "requester": {
                "identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": author.nihdi}
            },
            "medicationCodeableConcept": medication,
            "dosageInstruction": [{"text": dosage}],
            "dispenseRequest": {
                "validityPeriod": {"start": today.isoformat()},
                "quantity": {"value": 1, "unit": "package"},
            },
        }
        result.append((local_id, author, body))
    return result


# -- maximum billing: a household past its ceiling (issue 17; mutualities/README.md) -------------


@dataclass(frozen=True)
class DemoHousehold:
    """A household as its sickness fund knows it (mutualities/data/households.json): the fund
    counts its members' patient shares of a calendar year against its income bracket's ceiling
    (mutualities/data/maximum_billing.json). tests/mutualities/test_maximum_billing.py keeps
    these copies true."""

    key: str
    fund_code: str
    members: tuple[str, ...]
    income_bracket: str
    ceiling: str  # EUR


HOUSEHOLD = DemoHousehold("100-peeters", "100", (PATIENTS[0].ssin, CHILD.ssin), "1", "254.99")


@dataclass(frozen=True)
class DemoClaim:
    """An attestation Dr. Claes sends for the household: ``sessions`` of one service, each on a
    day of its own this year when the year has enough days before today."""

    local_id: str
    patient: str
    code: str  # NIHDI nomenclature (general practice)
    sessions: int
    fee: float  # the legal fee per session the provider states (the fund pays on its own tariff)
    today: bool = False  # on today's date rather than the days before


# Patient shares at the funds' tariff (mutualities/data/tariffs.json): a home visit 10.00, a
# consultation 4.00. 120 + 100 + 40 + 10 = 270.00 for a ceiling of 254.99, so the consultations or
# the last visit cross it (whichever the fund settles last) and the fund pays 15.01 of the shares.
DEMO_CLAIMS = (
    DemoClaim("maf-1", PATIENTS[0].ssin, "103132", 12, 45.35),
    DemoClaim("maf-2", CHILD.ssin, "103132", 10, 45.35),
    DemoClaim("maf-3", PATIENTS[0].ssin, "101076", 10, 32.97),
    DemoClaim("maf-4", PATIENTS[0].ssin, "103132", 1, 45.35, today=True),
)


def claims(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """(request key, body) of each demo attestation of the Brussels year of ``now``. The key
    names the year: a demo started again that year finds its claims (a replay, or the key taken
    by the same claim dated on an earlier day), one started in a new year sends that year's."""
    today = brussels_date(now)
    author = PROFESSIONALS[0]
    result = []
    for demo in DEMO_CLAIMS:
        items: list[dict[str, Any]] = [
            {
                "sequence": index + 1,
                "productOrService": {
                    "coding": [{"system": systems.NIHDI_NOMENCLATURE, "code": demo.code}]
                },
                "servicedDate": day.isoformat(),
                "quantity": {"value": count},
                "unitPrice": {"value": demo.fee, "currency": "EUR"},
                "net": {"value": round(demo.fee * count, 2), "currency": "EUR"},
            }
            for index, (day, count) in enumerate(_sessions(demo, today))
        ]
        body = {
            "resourceType": "Claim",
            "status": "active",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                        "code": "professional",
                    }
                ]
            },
            "subType": {"coding": [{"system": ATTESTATION_TYPE, "code": "generalpractice"}]},
            "use": "claim",
            "patient": {"identifier": {"system": systems.SSIN, "value": demo.patient}},
            "created": now.isoformat(timespec="seconds"),
            "provider": {
                "identifier": {"system": systems.NIHDI_PROFESSIONAL, "value": author.nihdi}
            },
            "insurer": {"identifier": {"system": systems.INSURER, "value": HOUSEHOLD.fund_code}},
            "item": items,
            "total": {
                "value": round(sum(i["net"]["value"] for i in items), 2),
                "currency": "EUR",
            },
        }
        result.append((f"demo-{today.year}-{demo.local_id}", body))
    return result


def _sessions(demo: DemoClaim, today: date) -> list[tuple[date, int]]:
    """One session a day on the days before today in this year (the latest first), several a day
    when the year is younger than the sessions; today's claim on today."""
    days = [today - timedelta(days=k) for k in range(1, demo.sessions + 1)]
    days = [day for day in days if day.year == today.year] or [today]
    if demo.today:
        days = [today]
    counts = [
        demo.sessions // len(days) + (i < demo.sessions % len(days)) for i in range(len(days))
    ]
    return [(day, count) for day, count in zip(days, counts, strict=True) if count]
