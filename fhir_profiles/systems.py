"""Naming-system and extension URIs of the Belgian FHIR profiles (docs/architecture.md 4b, ID-19..ID-22).

The gateway emits the canonical ``/core/`` URIs of ID-20 and accepts the legacy aliases of ID-19
and ID-22 on input; :func:`normalise_system` is the one place that maps an alias to its canonical.
"""

from __future__ import annotations

from typing import Final

_CORE: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/"
_LEGACY: Final = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/"

# ID-20: canonical systems, as published in hl7-be/ehealth-be-core.
SSIN: Final = _CORE + "ssin"
NIHDI: Final = _CORE + "nihdi"
NIHDI_PROFESSIONAL: Final = _CORE + "nihdi-professional"
NIHDI_ORGANIZATION: Final = _CORE + "nihdi-organization"
CBE: Final = _CORE + "cbe"
EHP: Final = _CORE + "ehp"
INSURER: Final = _CORE + "insurancenumber"
# sic: "insurancy" is how the IG spells it (ID-14).
INSURANCE_MEMBERSHIP: Final = _CORE + "insurancymembership"
NIHDI_NOMENCLATURE: Final = _CORE + "be-ns-nihdi-nomenclature"

# ID-19: the recip-e slice of BeMedicationPrescription (note: http, no www).
RID: Final = "http://ehealth.fgov.be/standards/fhir/medication/NamingSystem/be-ns-prescription"

# ID-15..ID-17: product codes.
CNK: Final = "https://www.ehealth.fgov.be/standards/fhir/medication/NamingSystem/cnk-codes"
AMPP: Final = "urn:be:samv2:amppackage"
VMP_GROUP: Final = "urn:be:samv2:vmpgroup"

# Legacy aliases accepted on input (ID-19, ID-22).
LEGACY_SSIN: Final = _LEGACY + "ssin"
LEGACY_NIHDI_PRACTITIONER: Final = _LEGACY + "nihdi-practitioner"
# hl7-be/ehealth-be-core releases before March 2022 published the NIHDI systems without /core/,
# and briefly a /core/ nihdi-practitioner (ID-22).
LEGACY_NIHDI: Final = _LEGACY + "nihdi"
LEGACY_NIHDI_PROFESSIONAL: Final = _LEGACY + "nihdi-professional"
LEGACY_CORE_NIHDI_PRACTITIONER: Final = _CORE + "nihdi-practitioner"
LEGACY_NIHDI_ORGANIZATION: Final = _LEGACY + "nihdi-organization"
LEGACY_RID: Final = _LEGACY + "prescription-id"
# [A] The hl7-be dispense examples (the same artefacts as ID-22) code CNKs with this system.
LEGACY_CNK: Final = "https://cnk.apb.be/codings/cnk_product_codes"

# The hl7-be medication guide's profiles: its canonical base + the profile Id, as published.
_MEDICATION_SD: Final = "https://www.ehealth.fgov.be/standards/fhir/medication/StructureDefinition/"
PRESCRIPTION_PROFILE: Final = _MEDICATION_SD + "BeMedicationPrescription"
DISPENSE_PROFILE: Final = _MEDICATION_SD + "BeMedicationDispense"

# RX-7: the reason an open prescription past its validity is reported ``stopped``: the medication
# guide's BeMedicationPrescriptionStatusReason code system (code ``expired``), bound extensibly to
# MedicationRequest.statusReason (hl7-be/medication, terminology/BeMedicationPrescriptionStatusReason).
PRESCRIPTION_STATUS_REASON: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/terminology/CodeSystem/"
    "BeMedicationPrescriptionStatusReason"
)

# ID-21: an identifier value carrying this extension is a pseudonym, not a clear SSIN/NIHDI.
PSEUDONYMIZATION_EXTENSION: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/infsec/StructureDefinition/be-ext-pseudonymization"
)
# RX-21: medication type (magistral, medicinal-product...) on MedicationRequest.medication[x].
MEDICATION_TYPE_EXTENSION: Final = (
    "https://www.ehealth.fgov.be/standards/fhir/medication/StructureDefinition/BeExtMedicationType"
)

_CANONICAL: Final[dict[str, str]] = {
    LEGACY_SSIN: SSIN,
    LEGACY_NIHDI_PRACTITIONER: NIHDI_PROFESSIONAL,
    LEGACY_NIHDI: NIHDI,
    LEGACY_NIHDI_PROFESSIONAL: NIHDI_PROFESSIONAL,
    LEGACY_CORE_NIHDI_PRACTITIONER: NIHDI_PROFESSIONAL,
    LEGACY_NIHDI_ORGANIZATION: NIHDI_ORGANIZATION,
    LEGACY_RID: RID,
    LEGACY_CNK: CNK,
}


def normalise_system(uri: str) -> str:
    """Return the canonical URI for ``uri`` (ID-22: accept legacy aliases, emit ``/core/``).

    Unknown URIs are returned unchanged: whether they are allowed is the caller's rule.
    """
    return _CANONICAL.get(uri, uri)
