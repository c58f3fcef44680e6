"""The CapabilityStatement lists POST /fhir/$process-message at the system level (issue 17)."""

from __future__ import annotations

import httpx


async def test_metadata_lists_process_message(provider: httpx.AsyncClient) -> None:
    statement = (await provider.get("/fhir/metadata")).json()
    [rest] = statement["rest"]
    [operation] = [o for o in rest["operation"] if o["name"] == "process-message"]
    assert operation["definition"] == (
        "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
    )
    assert "eattest-create" in operation["documentation"]
