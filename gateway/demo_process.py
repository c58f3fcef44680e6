"""A mock service ``gateway demo`` starts beside the gateway: ``python -m <module>`` on a port of
its own, with its log under the data dir, stopped with the demo. The gateway reaches it over HTTP
only (the national register: gateway/demo_register.py; the sickness funds: gateway/demo_funds.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class DemoProcess:
    """A mock service this demo started; ``url`` is its base URL."""

    def __init__(
        self,
        name: str,
        module: str,
        args: list[str],
        data_dir: Path,
        preferred_port: int,
        *,
        instead: str = "",
    ) -> None:
        self.name = name
        self._instead = instead  # how to use one already running, said when this one fails
        port = free_port(preferred_port, name)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / f"{module}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
                [sys.executable, "-m", module, "--port", str(port), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(
                    f"the {self.name} did not start: see {self.log_path}{self._instead}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"the {self.name} is not answering: see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(preferred: int, name: str) -> int:
    """``preferred`` when it is free, else any free port: a second demo, or a service left over
    from a killed one, does not stop this demo (the manifest names the URL in use)."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise SystemExit(f"no free port for the {name}")
