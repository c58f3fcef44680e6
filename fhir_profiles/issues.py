"""The one shape every profile rule reports in: an OperationOutcome issue, before it is rendered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One violation of a rule, pointing at the element at fault.

    ``code`` is a FHIR issue-type code (``required``, ``value``, ``invalid``, ``business-rule``...);
    ``expression`` is the FHIRPath of the element (``MedicationRequest.subject.identifier.value``);
    ``rule`` is the domain rule id from ``docs/domain.md``
    (``ID-2``, ``RX-12``...) so that a client developer can look the rule up. ``diagnostics``
    never repeats the value at fault (it may be an SSIN): it says what is wrong, not what was sent.
    """

    code: str
    expression: str
    diagnostics: str
    rule: str = ""
    severity: Severity = "error"
