"""``gateway serve`` freezes the heap its server process starts with (issue 18): the modules, the
app and its clients live as long as the process, and a full garbage collection that walked them
stopped a worker for 130-160 ms every few seconds under load (bench/README.md)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.responses import PlainTextResponse

from gateway.drain import DrainingServer


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process keeps collecting its own garbage


async def test_the_start_up_heap_is_frozen_once_the_server_listens(unfrozen: None) -> None:
    config = uvicorn.Config(
        PlainTextResponse("ok"), host="127.0.0.1", port=0, lifespan="off", log_level="warning"
    )
    server = DrainingServer(config, drain_seconds=0)
    assert gc.get_freeze_count() == 0
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
                await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True
        await serving
