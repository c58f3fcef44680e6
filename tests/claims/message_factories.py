"""eAttest request messages as care software sends them, modelled on the hl7-be eattestation
guide's examples (a GP's consultation with supplements as ex11, a physiotherapy session on
prescription as ex01, a cancellation as ex13), in this project's own words and data.

``create_message(claim)`` wraps the same Claim content ``POST /fhir/Claim`` takes
(``tests.claims.factories.claim``) in a message: the patient, the provider's role (with the
collector's CBE) and person become entries the Claim references by ``urn:uuid:``, a care team names
the provider, and the items point at him. So one claim's content can go through both paths.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from fhir_profiles import systems
from fhir_profiles.rules.claim_codes import (
    ATTESTATION,
    CANCEL_REASON,
    CARE_TEAM_ROLE,
    CD_HCPARTY,
    ITEM_SUPPLEMENT,
    MESSAGE_EVENTS,
    REQUESTER_STANDARD,
    SUPPLEMENT,
)

COLLECTOR_CBE = "0456123789"  # the practice that receives the fees (a made-up CBE number)
PRESCRIBER = "12345625004"  # tests.fixtures.auth.OTHER_PRESCRIBER_NIHDI, a GP who prescribes


def uid() -> str:
    return str(uuid.uuid4())


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _message(
    event: str,
    claim: dict[str, Any],
    resources: list[dict[str, Any]],
    *,
    source: str,
    bundle_id: str | None,
    **routing: Any,
) -> dict[str, Any]:
    """The request Bundle (type message) both messages share: a MessageHeader for ``event`` from
    ``source`` (with ``routing``: destination, sender) whose focus is ``claim``, then
    ``resources``, then the claim itself."""
    header = {
        "resourceType": "MessageHeader",
        "id": uid(),
        "eventCoding": {"system": MESSAGE_EVENTS, "code": event},
        **routing,
        "source": {"endpoint": source},
        "focus": [{"reference": f"urn:uuid:{claim['id']}"}],
    }
    return {
        "resourceType": "Bundle",
        "id": bundle_id or uid(),
        "type": "message",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": [_entry(header), *(_entry(r) for r in resources), _entry(claim)],
    }


def with_supplements(claim: dict[str, Any], per_item: float = 0.0) -> dict[str, Any]:
    """be-inv-supplement: the supplement on the claim and on every item (0 when none)."""
    body = copy.deepcopy(claim)
    for entry in body["item"]:
        money = {"value": per_item, "currency": "EUR"}
        entry.setdefault("extension", []).append({"url": ITEM_SUPPLEMENT, "valueMoney": money})
    total = {"value": round(per_item * len(body["item"]), 2), "currency": "EUR"}
    body.setdefault("extension", []).append({"url": SUPPLEMENT, "valueMoney": total})
    return body


def member(
    nihdi: str, role: str, qualification: str = "persphysician", sequence: int = 1
) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "provider": {"identifier": {"system": systems.NIHDI, "value": nihdi}},
        "role": {"coding": [{"system": CARE_TEAM_ROLE, "code": role}]},
        "qualification": {"coding": [{"system": CD_HCPARTY, "code": qualification}]},
    }


def create_message(
    claim: dict[str, Any],
    *,
    bundle_id: str | None = None,
    membership: tuple[str, str] | None = None,
    care_team: list[dict[str, Any]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    event: str = "eattest-create",
) -> dict[str, Any]:
    """The request message around ``claim`` (the REST shape). ``membership=(fund, number)``
    names the patient by his fund's membership number instead of his SSIN (ex11)."""
    body = copy.deepcopy(claim)
    provider_nihdi = body["provider"]["identifier"]["value"]
    patient_id, role_id, person_id, claim_id = uid(), uid(), uid(), uid()
    if membership is None:
        patient_identifier = dict(body["patient"]["identifier"])
    else:
        fund, number = membership
        patient_identifier = {
            "system": systems.INSURANCE_MEMBERSHIP,
            "value": number,
            "assigner": {"identifier": {"system": systems.INSURER, "value": fund}},
        }
        body.pop("insurer", None)
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [patient_identifier],
        "name": [{"family": "Peeters", "given": ["Jan"]}],
    }
    person = {
        "resourceType": "Practitioner",
        "id": person_id,
        "identifier": [{"system": systems.NIHDI, "value": provider_nihdi}],
        "name": [{"family": "Janssens", "given": ["Els"]}],
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": role_id,
        "practitioner": {"reference": f"urn:uuid:{person_id}"},
        "organization": {"identifier": {"system": systems.CBE, "value": COLLECTOR_CBE}},
        "code": [{"coding": [{"system": CD_HCPARTY, "code": "persphysician"}]}],
    }
    team = care_team or body.get("careTeam") or [member(provider_nihdi, "primary")]
    body["careTeam"] = team
    for entry in body.get("item", []):
        entry.setdefault("careTeamSequence", [team[-1]["sequence"]] if team else [])
    body.update(
        {
            "id": claim_id,
            "patient": {"reference": f"urn:uuid:{patient_id}"},
            "provider": {"reference": f"urn:uuid:{role_id}"},
            "enterer": {"reference": f"urn:uuid:{role_id}"},
        }
    )
    return _message(
        event,
        body,
        [role, person, patient, *(extra or [])],
        source=f"urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11:{provider_nihdi}",
        bundle_id=bundle_id,
        destination=[
            {
                "name": "MyCareNet",
                "endpoint": "urn:be:fgov:kbo-bce:organization:cbe-number:0820563481",
            }
        ],
        sender={"reference": f"urn:uuid:{role_id}"},
    )


def prescription(prescriber_role_id: str, prescriber_person_id: str) -> list[dict[str, Any]]:
    """A physiotherapy prescription (ServiceRequest) and its prescriber, as in ex01."""
    request_id = uid()
    return [
        {
            "resourceType": "ServiceRequest",
            "id": request_id,
            "extension": [
                {
                    "url": REQUESTER_STANDARD,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "https://www.ehealth.fgov.be/standards/fhir/nihdi-terminology/CodeSystem/be-cs-requester-norm",
                                "code": "1",
                            }
                        ]
                    },
                }
            ],
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "91251008"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91251008"}]},
            "subject": {"display": "the patient"},
            "authoredOn": "2025-01-06",
            "requester": {"reference": f"urn:uuid:{prescriber_role_id}"},
        },
        {
            "resourceType": "PractitionerRole",
            "id": prescriber_role_id,
            "practitioner": {"reference": f"urn:uuid:{prescriber_person_id}"},
        },
        {
            "resourceType": "Practitioner",
            "id": prescriber_person_id,
            "identifier": [{"system": systems.NIHDI, "value": PRESCRIBER}],
        },
    ]


def cancel_message(
    attestation: str, provider: str, reason: str = "C", *, bundle_id: str | None = None
) -> dict[str, Any]:
    """An eattest-cancel message (ex13): the attestation number and one reason, no items."""
    role_id, person_id, patient_id, claim_id = uid(), uid(), uid(), uid()
    claim = {
        "resourceType": "Claim",
        "id": claim_id,
        "identifier": [{"system": ATTESTATION, "value": attestation}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": f"urn:uuid:{patient_id}"},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "provider": {"reference": f"urn:uuid:{role_id}"},
        "enterer": {"reference": f"urn:uuid:{role_id}"},
        "priority": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "stat"}
            ]
        },
        "supportingInfo": [
            {
                "sequence": 1,
                "category": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                            "code": "info",
                        }
                    ]
                },
                "code": {"coding": [{"system": CANCEL_REASON, "code": reason}]},
            }
        ],
        "insurance": [
            {
                "sequence": 1,
                "focal": True,
                "coverage": {
                    "display": "use of mandatory insurance coverage, no further details provided here."
                },
            }
        ],
    }
    return _message(
        "eattest-cancel",
        claim,
        [
            {"resourceType": "PractitionerRole", "id": role_id, "practitioner": {"reference": f"urn:uuid:{person_id}"}},
            {"resourceType": "Practitioner", "id": person_id, "identifier": [{"system": systems.NIHDI, "value": provider}]},
            {"resourceType": "Patient", "id": patient_id},
        ],
        source="urn:care-software",
        bundle_id=bundle_id,
    )  # fmt: skip
