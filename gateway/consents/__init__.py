"""Consent resources: informed consent, exclusions and therapeutic relationships as FHIR ``Consent``
(docs/architecture.md 4c, domain CO-1..CO-10). ``facts`` loads a patient's ``consent.PatientFacts`` from the
store; ``service`` and ``routes`` serve ``/fhir/Consent``."""
