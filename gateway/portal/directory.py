"""The provider list the patient picks from (exclusions, one pharmacy's visibility) and the names
shown beside NIHDI numbers: the registered prescriber and pharmacy clients (``oauth_clients``:
name, NIHDI number), read in a short session of its own and kept for a minute per process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request

_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class Provider:
    nihdi: str
    name: str
    role: str  # prescriber | pharmacist
    organisation: str | None


@dataclass
class _Cached:
    providers: tuple[Provider, ...]
    loaded_at: float


async def providers(request: Request) -> tuple[Provider, ...]:
    cached: _Cached | None = getattr(request.app.state, "portal_directory", None)
    if cached is not None and time.monotonic() - cached.loaded_at < _TTL_SECONDS:
        return cached.providers
    clients = await request.app.state.auth.registry.list()
    seen: dict[str, Provider] = {}
    for client in clients:
        if client.role in ("prescriber", "pharmacist") and client.nihdi and client.active:
            seen.setdefault(
                client.nihdi, Provider(client.nihdi, client.name, client.role, client.organisation)
            )
    found = tuple(sorted(seen.values(), key=lambda p: (p.role, p.name.lower())))
    request.app.state.portal_directory = _Cached(found, time.monotonic())
    return found


def names(found: tuple[Provider, ...]) -> dict[str, str]:
    """NIHDI -> name; a professional's 11-digit number also answers for its 8-digit person part
    (exclusions match a prescriber on the first 8 digits, docs/access.md)."""
    table: dict[str, str] = {}
    for provider in found:
        table[provider.nihdi] = provider.name
        if len(provider.nihdi) == 11:
            table.setdefault(provider.nihdi[:8], provider.name)
    return table
