"""Logical ids named in a ``/fhir`` path (FHIR R4 datatypes.html#id: ``[A-Za-z0-9\\-.]{1,64}``).

An id of any other shape names nothing the gateway can have written, so it is a 404 at once,
before a database sees it: PostgreSQL refuses a NUL in text (a 500), and a path segment may carry
whatever a client typed. The message never repeats it.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request

from fhir_profiles.ids import FHIR_ID
from gateway.errors import NotFound

# The path parameters that name a stored resource, on every /fhir route.
ID_PARAMETERS: Final = frozenset({"logical_id", "event_id"})


async def check_path_ids(request: Request) -> None:  # async: no thread-pool hop
    """404 unless every id in the path is a FHIR id (a dependency of the ``/fhir`` router)."""
    for name, value in request.path_params.items():
        if name in ID_PARAMETERS and not FHIR_ID.fullmatch(str(value)):
            raise NotFound("no resource has this id: ids are 1 to 64 of A-Z, a-z, 0-9, '-', '.'")
