"""The demo's national register: ``gateway demo`` starts ``python -m national_register`` beside
the gateway (unless ``GATEWAY_NATIONAL_REGISTER_URL`` points at one already running), issues each
demo patient's eID card there and configures the gateway to check proofs of presence with it
(docs/access.md, "Presence proofs"). The register is reached over HTTP only, like the gateway
reaches it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.demo_data import PATIENTS

DEMO_REGISTER_PORT = 9200


class DemoRegister:
    """A register process this demo started (stopped with the demo)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        port = port or _free_port(DEMO_REGISTER_PORT)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "national_register.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
                [
                    sys.executable,
                    "-m",
                    "national_register",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data_dir / "national_register"),
                    "--log-format",
                    "console",
                ],
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
                    f"the national register did not start: see {self.log_path}; "
                    "or set GATEWAY_NATIONAL_REGISTER_URL to a register already running"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"the national register is not answering: see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port(preferred: int) -> int:
    """``preferred`` when it is free, else any free port: a second demo, or a register left over
    from a killed one, does not stop this demo (the manifest names the URL in use)."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise SystemExit("no free port for the national register")


def issue_demo_cards(url: str) -> None:
    """Each demo patient's card is their current card in the register (again on every run: a
    card already theirs is left as it is)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        for patient in PATIENTS:
            response = client.post(
                "/admin/cards", json={"ssin": patient.ssin, "card_number": patient.card_number}
            )
            if response.status_code not in (200, 201):
                raise SystemExit(
                    f"the national register refused a demo card: HTTP {response.status_code}"
                )
