"""Naming systems: canonical URIs emitted, legacy aliases accepted (ID-19..ID-22)."""

from __future__ import annotations

import pytest

from fhir_profiles import systems
from fhir_profiles.systems import normalise_system


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("https://www.ehealth.fgov.be/standards/fhir/NamingSystem/ssin", systems.SSIN),
        (
            "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi-practitioner",
            systems.NIHDI_PROFESSIONAL,
        ),
        (
            "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi-organization",
            systems.NIHDI_ORGANIZATION,
        ),
    ],
)
def test_ID_22_legacy_aliases_normalised(alias: str, canonical: str) -> None:
    assert normalise_system(alias) == canonical
    assert "/core/" in canonical


def test_ID_19_legacy_rid_system_normalised() -> None:
    legacy = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/prescription-id"
    assert normalise_system(legacy) == systems.RID
    assert systems.RID.startswith("http://ehealth.fgov.be/")


@pytest.mark.parametrize(
    "uri",
    [systems.SSIN, systems.NIHDI, systems.NIHDI_PROFESSIONAL, systems.CBE, systems.CNK, "urn:x"],
)
def test_ID_20_canonical_and_unknown_uris_unchanged(uri: str) -> None:
    assert normalise_system(uri) == uri
