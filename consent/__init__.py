"""Access decisions: consent, therapeutic relationships, exclusions, visibility (docs/architecture.md 5).

Pure functions over values (rules are values): no I/O, no clock, no logging. The caller
loads ``PatientFacts``, asks ``decide``, audits the ``Decision`` and turns a denial into a 403
whose message is the reason code.
"""

from consent._predicates import (
    CLOCK_SKEW,
    PRESENCE_MAX_AGE,
    excludes_pharmacy,
    may_collect_for,
    same_provider,
)
from consent.durations import RELATIONSHIP_MONTHS, add_months, relationship_end
from consent.model import (
    OPEN_STATES,
    AccessPath,
    AccessRequest,
    Action,
    Actor,
    ByPresence,
    ByRelationship,
    ByRid,
    Decision,
    Exclusion,
    FamilyLink,
    HolderRole,
    InformedConsent,
    Mandate,
    MandateAction,
    PatientFacts,
    PharmacyVisibility,
    PrescriberVisibility,
    PrescriptionState,
    Reason,
    Relationship,
    RelationshipKind,
    Resource,
    ResourceKind,
    Role,
    Visibility,
)
from consent.policy import ACCESS_MATRIX, decide
from consent.search import SearchFilter, decide_each, filter_visible, search_filter

__all__ = [
    "ACCESS_MATRIX",
    "CLOCK_SKEW",
    "OPEN_STATES",
    "PRESENCE_MAX_AGE",
    "RELATIONSHIP_MONTHS",
    "AccessPath",
    "AccessRequest",
    "Action",
    "Actor",
    "ByPresence",
    "ByRelationship",
    "ByRid",
    "Decision",
    "Exclusion",
    "FamilyLink",
    "HolderRole",
    "InformedConsent",
    "Mandate",
    "MandateAction",
    "PatientFacts",
    "PharmacyVisibility",
    "PrescriberVisibility",
    "PrescriptionState",
    "Reason",
    "Relationship",
    "RelationshipKind",
    "Resource",
    "ResourceKind",
    "Role",
    "SearchFilter",
    "Visibility",
    "add_months",
    "decide",
    "decide_each",
    "excludes_pharmacy",
    "filter_visible",
    "may_collect_for",
    "relationship_end",
    "same_provider",
    "search_filter",
]
