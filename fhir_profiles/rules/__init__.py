"""The Belgian prescription rules on create, one small function each (domain RX-3..RX-24).

Every rule takes the JSON dict of a structurally valid MedicationRequest and returns one
:class:`~fhir_profiles.issues.Issue` per violation, citing its domain rule id. ``parties``: who
(patient, prescriber); ``order``: identifiers, status, intent, dates; ``product``: what is
prescribed and how much; ``dosage``: how it is taken.
"""

from fhir_profiles.rules.dosage import rule_dosage
from fhir_profiles.rules.order import (
    rule_authored_on,
    rule_identifier,
    rule_intent,
    rule_status,
    rule_validity,
)
from fhir_profiles.rules.parties import rule_requester, rule_subject
from fhir_profiles.rules.product import (
    rule_medication,
    rule_quantity,
    rule_substitution,
)

__all__ = [
    "rule_authored_on",
    "rule_dosage",
    "rule_identifier",
    "rule_intent",
    "rule_medication",
    "rule_quantity",
    "rule_requester",
    "rule_status",
    "rule_subject",
    "rule_substitution",
    "rule_validity",
]
