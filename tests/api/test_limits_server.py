"""The limits `gateway serve` gives the real server (uvicorn, from GATEWAY_* settings), over raw
sockets: header size, open connections, and the body deadline on a real connection."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import Settings
from tests.fixtures.processes import Process, free_port, gateway_env, wait_healthy

MAX_HEADER_BYTES = 4096
MAX_CONNECTIONS = 3
SOCKET_GUARD_SECONDS = 15  # only keeps a broken server from hanging the suite


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[int]:
    """``gateway serve`` on a free port with tight limits; yields the port."""
    port = free_port()
    process = Process(
        "gateway",
        # One process: the limits under test are per process (docs/operations.md).
        [sys.executable, "-m", "gateway.cli", "serve", "--workers", "1", "--port", str(port)],
        gateway_env(
            settings,
            {
                "GATEWAY_CA_DIR": str(settings.ca_dir),
                "GATEWAY_LOG_FORMAT": "console",
                "GATEWAY_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
                "GATEWAY_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
                "GATEWAY_BODY_TIMEOUT_SECONDS": "1",
            },
        ),
        tmp_path / "gateway.log",
    )
    process.start()
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}/healthz")
        yield port
    finally:
        process.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_GUARD_SECONDS)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def get_healthz(port: int, extra_header: str = "") -> bytes:
    with connect(port) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: t\r\n{extra_header}Connection: close\r\n\r\n".encode()
        )
        return read_all(sock)


def test_sec_oversize_headers_are_431(server: int) -> None:
    fits = get_healthz(server, f"X-Padding: {'a' * (MAX_HEADER_BYTES // 2)}\r\n")
    assert status_of(fits) == 200
    # Twice the configured bound, still under uvicorn's own default (16 KiB): the setting is
    # what refuses it.
    too_big = get_healthz(server, f"X-Padding: {'a' * (MAX_HEADER_BYTES * 2)}\r\n")
    assert status_of(too_big) == 431
    assert b"OperationOutcome" in too_big


def test_sec_header_block_that_never_ends_is_cut_at_the_bound(server: int) -> None:
    """A client that keeps sending header bytes without ever ending the block: the server stops
    buffering at the bound, answers 400 and closes (it does not wait for the end)."""
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: ")
        sock.sendall(b"a" * (MAX_HEADER_BYTES * 2))  # no CRLF CRLF, ever
        response = read_all(sock)
    assert status_of(response) == 400


def test_sec_slow_body_is_408_on_a_real_connection(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"grant_type=client_cre"
        )
        response = read_all(sock)  # returns only because the server closes the connection
    head, _, body = response.partition(b"\r\n\r\n")
    assert status_of(head) == 408
    assert b"connection: close" in head.lower()
    assert b'"resourceType":"OperationOutcome"' in body


def test_sec_open_connections_are_bounded(server: int) -> None:
    idle = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        with connect(server) as extra:
            extra.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert status_of(read_all(extra)) == 503
    finally:
        for sock in idle:
            sock.close()
