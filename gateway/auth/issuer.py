"""Who issues the gateway's access tokens and for whom: the ``iss`` and ``aud`` every token carries.

Its own module because both the token endpoint (``routes.py``) and the resource server
(``identity.py``) need them, and ``identity`` sits below the authorization server.
"""

from __future__ import annotations

from fastapi import Request

from gateway.urls import fhir_base, public_base


def issuer(request: Request) -> str:
    configured: str | None = request.app.state.settings.issuer
    return configured.rstrip("/") if configured else public_base(request)


def fhir_audience(request: Request) -> str:
    """The ``aud`` of access tokens: the FHIR base URL."""
    return fhir_base(request)
