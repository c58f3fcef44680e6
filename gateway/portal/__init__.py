"""The patient portal (docs/architecture.md 7; domain PO-1..PO-4): server-rendered pages under ``/portal``.

The portal is an OAuth client of the gateway (authorization code + PKCE, ``gateway/auth/codes.py``)
and reads and writes only through the gateway's own FHIR API with the patient's access token, so
the access rules and the audit are exactly those the API enforces (docs/portal.md).
"""
