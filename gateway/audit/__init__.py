"""Audit: the append-only, hash-chained access log (docs/architecture.md 8, domain SEC-5, SEC-9).

``writer`` is the only writer of AuditEvents; ``chain`` verifies the chain; ``log`` reads it back
(``gateway.audit_events`` serves it as ``GET /fhir/AuditEvent``); ``refusals`` writes denied
attempts in their own transaction.
"""
