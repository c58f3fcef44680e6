"""A write is answered only once it is committed: when the commit fails, the client gets a
retryable 503, not a 201, and nothing of the request stays (the hot routes commit themselves,
gateway.access.service.family_service; the others through gateway.db.get_session)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, exc

from fhir_profiles import systems
from tests.fhir_profiles.factories import SSIN, medication_request
from tests.fixtures.fhir import FHIR_JSON


@contextmanager
def commits_failing(app: FastAPI) -> Iterator[None]:
    """Every commit fails as on a connection the database dropped meanwhile."""

    def fail(_connection: Any) -> None:
        raise exc.OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    engine = app.state.engine.sync_engine
    event.listen(engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(engine, "commit", fail)


async def test_a_create_whose_commit_fails_is_503_and_leaves_nothing(
    app: FastAPI, prescriber: httpx.AsyncClient
) -> None:
    with commits_failing(app):
        answer = await prescriber.post(
            "/fhir/MedicationRequest", json=medication_request(), headers=FHIR_JSON
        )
    assert answer.status_code == 503, answer.text
    assert "retry-after" in answer.headers
    assert answer.json()["resourceType"] == "OperationOutcome"
    found = await prescriber.get(
        "/fhir/MedicationRequest", params={"patient:identifier": f"{systems.SSIN}|{SSIN}"}
    )
    assert found.status_code == 200
    assert found.json()["total"] == 0

    again = await prescriber.post(
        "/fhir/MedicationRequest", json=medication_request(), headers=FHIR_JSON
    )
    assert again.status_code == 201  # the retry the 503 invites
