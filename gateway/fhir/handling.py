"""``Prefer: handling=strict|lenient`` (FHIR R4 search.html#errors, http.html#prefer).

Strict, the default: a search parameter the type does not support is a 400 (a pharmacy that
misspells ``status`` must not silently get every prescription). Lenient: it is left out of the
search and reported in the Bundle, as an OperationOutcome entry (``search.mode = outcome``), and
left out of the Bundle's links, which show the parameters actually used.

The preference is read once per request (``read_handling``, a dependency of every ``/fhir``
route) into a context variable: each request runs in its own context, so nothing leaks between
requests.
"""

from __future__ import annotations

from contextvars import ContextVar

from fastapi import Request

from gateway.errors import BadRequest
from gateway.fhir.prefer import preference

_IGNORED: ContextVar[list[str] | None] = ContextVar("ignored_search_parameters", default=None)


async def read_handling(request: Request) -> None:  # async: no thread-pool hop
    value = (preference(request, "handling") or "strict").lower()
    _IGNORED.set([] if value == "lenient" else None)


def unsupported(name: str, message: str) -> None:
    """Refuse the unsupported parameter ``name`` (400), or under lenient handling note it."""
    ignored = _IGNORED.get()
    if ignored is None:
        raise BadRequest(message, expression=name[:40])
    if name not in ignored:
        ignored.append(name)


def ignored() -> list[str]:
    """The parameters lenient handling left out of this request's search."""
    return list(_IGNORED.get() or ())
