"""The bare endpoint the gateway is compared with: FastAPI, parse the JSON body, answer 201.

Run as its own process with the same uvicorn settings as ``gateway serve`` (one worker, loop and
HTTP implementation ``auto``, which resolve to uvloop and httptools with uvicorn[standard]):
``python -m bench.bare_app --port 8001``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

_CREATED = orjson.dumps({"resourceType": "MedicationRequest", "id": "bare"})


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.post("/fhir/MedicationRequest")
async def create(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_CREATED, status_code=201, media_type="application/fhir+json")


_BUNDLE = orjson.dumps(
    {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "bare"}}],
    }
)


# Any other type (a dispense, a claim) is answered like a create; any search or read by a fixed
# small Bundle, so every scenario of bench/suite.py has its bare reference.
@app.post("/fhir/{resource_type}")
async def create_any(resource_type: str, request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_CREATED, status_code=201, media_type="application/fhir+json")


@app.get("/fhir/{resource_type}")
async def search_any(resource_type: str) -> Response:
    return Response(_BUNDLE, media_type="application/fhir+json")


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    # The same arguments as gateway.cli._serve, so the two differ only in the application.
    uvicorn.run(
        "bench.bare_app:app",
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
