"""``GET /fhir/AuditEvent``: the audit log as a FHIR resource family (domain SEC-5, PO-4).

A family like prescriptions or consents, above the access door; the log it reads (``gateway.audit``:
writer, chain, reader) sits below the door, which writes to it (docs/architecture.md 3b).
"""
