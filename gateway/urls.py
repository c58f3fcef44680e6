"""The gateway's public base URL: ``GATEWAY_PUBLIC_BASE_URL`` behind a proxy, else the request's."""

from __future__ import annotations

from fastapi import Request


def public_base(request: Request) -> str:
    configured: str | None = request.app.state.settings.public_base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def fhir_base(request: Request) -> str:
    return public_base(request) + "/fhir"
