"""The production proxy configuration (docker/nginx.conf), run by a real nginx in front of a real
`gateway serve`, with only its addresses changed: its limits and hidden paths hold. Skipped when
no nginx binary is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from tests.fixtures.fhir import FHIR_JSON
from tests.fixtures.processes import ROOT, Process, free_port, gateway_env, wait_healthy

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(path)), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def local_conf(gateway_port: int, proxy_port: int) -> str:
    """docker/nginx.conf with the compose service names and port replaced by local ones."""
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    conf = re.sub(r"gateway-\d:8000", f"127.0.0.1:{gateway_port}", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};")
    assert ":8000" not in conf
    assert f"listen 127.0.0.1:{proxy_port};" in conf
    return conf


@pytest.fixture
def proxy(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(proxy URL, gateway URL): `gateway serve` in development (docs and metrics open) behind
    nginx with the production proxy configuration."""
    assert NGINX is not None
    gateway_port, proxy_port = free_port(), free_port()
    gateway = Process(
        "gateway",
        # One process: the limits under test are per process (docs/operations.md).
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--workers",
            "1",
            "--port",
            str(gateway_port),
        ],
        gateway_env(settings, {"GATEWAY_LOG_FORMAT": "console"}),
        tmp_path / "gateway.log",
    )
    site = tmp_path / "site.conf"
    site.write_text(local_conf(gateway_port, proxy_port))
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"{user}pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log;\n"
        "daemon off;\nworker_processes 1;\nevents {}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n  fastcgi_temp_path {tmp_path};\n"
        f"  uwsgi_temp_path {tmp_path};\n  scgi_temp_path {tmp_path};\n  include {site};\n}}\n"
    )
    nginx = Process(
        "nginx",
        [NGINX, "-c", str(main), "-p", str(tmp_path)],
        dict(os.environ),
        tmp_path / "nginx.log",
    )
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    gateway.start()
    try:
        wait_healthy(gateway, f"http://127.0.0.1:{gateway_port}/healthz")
        nginx.start()
        try:
            wait_healthy(nginx, f"http://127.0.0.1:{proxy_port}/healthz")
            yield f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{gateway_port}"
        finally:
            nginx.stop()
    finally:
        gateway.stop()


def test_sec_proxy_hides_operator_surfaces_and_bounds_requests(proxy: tuple[str, str]) -> None:
    public, direct = proxy
    with httpx.Client(base_url=public, timeout=10) as client:
        # Served by the instance (development settings), not through the public side.
        for path in ("/metrics", "/openapi.json", "/docs"):
            assert httpx.get(direct + path, timeout=10).status_code == 200, path
            assert client.get(path).status_code == 404, path
        # The public API passes, with the request id joined up end to end.
        answered = client.get("/fhir/metadata", headers={"x-request-id": "proxy-test-1"})
        assert answered.status_code == 200
        assert answered.headers["x-request-id"] == "proxy-test-1"
        # A body over GATEWAY_MAX_BODY_BYTES never reaches the instance.
        too_big = client.post(
            "/fhir/MedicationRequest",
            content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
            headers=FHIR_JSON,
        )
        assert too_big.status_code == 413
        assert too_big.headers["content-type"].startswith("text/html")  # nginx's, not ours
        # A header over the proxy's 8 KiB buffer is refused there (the instance takes 16 KiB).
        padded = client.get("/healthz", headers={"x-padding": "a" * 9000})
        assert padded.status_code == 400
        assert padded.headers["content-type"].startswith("text/html")
