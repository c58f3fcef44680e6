"""The operator's commands (``gateway certs|clients|keys|token``), the demo, and the README's
client snippets: curl-style with ``gateway token``, and authlib's own OAuth 2.0 client."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from fastapi import FastAPI
from joserfc.jwk import ECKey

from gateway import demo
from gateway.app import create_app
from gateway.cli import main, new_encryption_key
from gateway.migrate import upgrade
from tests.fixtures.auth import Auth
from tests.fixtures.processes import free_port

with warnings.catch_warnings():
    # authlib 1.9.10 prefers httpx2 and warns when it falls back to httpx (installed here).
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GATEWAY_DATABASE_URL", "GATEWAY_ENCRYPTION_KEY", "GATEWAY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "console")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_certs_clients_and_keys_commands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(env)
    (env / "encryption.key").write_text(new_encryption_key())
    upgrade(f"sqlite:///{env / 'gateway.db'}")

    code, out, _ = run(capsys, "certs", "init", "--data-dir", data)
    assert code == 0
    assert "created development CA" in out
    assert (env / "pki" / "root-ca.pem").is_file()
    code, out, _ = run(capsys, "certs", "init", "--data-dir", data)
    assert "kept existing" in out

    out_dir = env / "clients" / "gp"
    code, out, _ = run(
        capsys, "certs", "issue", "--data-dir", data, "--cn", "Dr. An Claes",
        "--nihdi", "19234011004", "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0
    assert (out_dir / "key.pem").is_file()
    assert (out_dir / "cert.pem").is_file()
    assert "BEGIN" not in out  # never prints key material

    register = ("clients", "register", "--data-dir", data, "--cert", str(out_dir / "cert.pem"))
    code, _, err = run(capsys, *register, "--role", "prescriber", "--nihdi", "12345625004")
    assert code == 2
    assert "OU=NIHDI" in err
    code, out, _ = run(
        capsys, *register, "--role", "prescriber", "--nihdi", "19234011004", "--client-id", "gp-1"
    )
    assert code == 0
    assert "registered gp-1" in out

    code, out, _ = run(capsys, "clients", "list", "--data-dir", data, "--json")
    listed = json.loads(out)
    assert [(c["client_id"], c["role"], c["nihdi"], c["status"]) for c in listed] == [
        ("gp-1", "prescriber", "19234011004", "active")
    ]
    assert listed[0]["qualification"] == "physician (004)"

    code, out, _ = run(capsys, "keys", "rotate", "--data-dir", data)
    assert code == 0
    assert "new signing key" in out
    code, out, _ = run(capsys, "keys", "rotate", "--data-dir", data)
    code, out, _ = run(capsys, "keys", "list", "--data-dir", data)
    assert out.count("signing") == 1
    assert out.count("retired, published") == 1

    code, out, _ = run(capsys, "clients", "revoke", "--data-dir", data, "gp-1", "--reason", "test")
    assert code == 0
    assert "revoked gp-1" in out
    code, _, err = run(capsys, "clients", "revoke", "--data-dir", data, "gp-1")
    assert code == 2
    code, out, _ = run(capsys, "clients", "list", "--data-dir", data)
    assert "revoked" in out


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[None]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def test_demo_manifest_and_gateway_token(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    settings = demo.prepare(host="127.0.0.1", port=port, data_dir=env)
    manifest = json.loads((env / "demo" / "manifest.json").read_text())
    assert manifest["token_url"] == f"http://127.0.0.1:{port}/oauth/token"
    assert manifest["fhir_base"] == f"http://127.0.0.1:{port}/fhir"
    roles = [c["role"] for c in manifest["clients"]]
    assert roles.count("prescriber") >= 2
    assert roles.count("pharmacist") >= 2
    assert "admin" in roles
    for client in manifest["clients"]:
        assert set(client) >= {"client_id", "role", "nihdi", "name", "key_path", "cert_path"}
        assert Path(client["key_path"]).is_file()
        assert Path(client["cert_path"]).is_file()
    assert {"ssin", "name", "fund_code", "membership_number"} <= set(manifest["patients"][0])
    # RX-14: the demo GPs share a GMF practice, listed in the manifest
    [practice] = manifest["gmf_practices"]
    prescribers = {c["nihdi"] for c in manifest["clients"] if c["role"] == "prescriber"}
    assert set(practice["members"]) == prescribers
    # a second start keeps the clients and their keys, and the practice's members once each
    demo.prepare(host="127.0.0.1", port=port, data_dir=env)
    capsys.readouterr()
    code, out, err = run(capsys, "gmf", "list", "--all", "--json", "--data-dir", str(env))
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["nihdi"] for r in rows) == sorted(prescribers)
    assert {r["practice_id"] for r in rows} == {practice["practice_id"]}

    app = create_app(settings)
    with serving(app, port):
        code, out, err = run(capsys, "token", "--client-id", "demo-gp-1", "--data-dir", str(env))
        assert code == 0, err
        token = out.strip()
        response = httpx.get(
            f"{manifest['fhir_base']}/MedicationRequest",
            params={"status": "active"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        assert response.json()["total"] >= 1  # the demo prescriptions of demo-gp-1

        code, out, _ = run(
            capsys,
            "token", "--client-id", "demo-pharmacy-1", "--data-dir", str(env), "--json",
            "--scope", "system/MedicationRequest.rs",
        )  # fmt: skip
        assert code == 0
        assert json.loads(out)["scope"] == "system/MedicationRequest.rs"
        code, _, err = run(capsys, "token", "--client-id", "nobody", "--data-dir", str(env))
        assert code == 2
        assert "not a demo client" in err


class GatewayAssertion(PrivateKeyJWT):  # type: ignore[misc]
    """The README's authlib snippet: authlib's assertions live an hour by default; the gateway
    accepts five minutes at most."""

    alg = "ES256"

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                expires_in=60,
            )
        )


async def test_authlib_client_from_the_readme(auth: Auth, tmp_path: Path) -> None:
    registered = await auth.register("prescriber")
    from gateway.auth.devpki import write_client

    files = write_client(tmp_path, registered.cert, registered.key, auth.pki.issuer.cert)
    token_url = "http://gateway.test/oauth/token"

    key = ECKey.import_key(files.key_path.read_bytes())
    async with AsyncOAuth2Client(
        registered.client_id,
        key,
        token_endpoint_auth_method=GatewayAssertion(token_url),
        scope="system/MedicationRequest.crs",
        transport=httpx.ASGITransport(app=auth.app),
        base_url="http://gateway.test",
    ) as client:
        token = await client.fetch_token(token_url, grant_type="client_credentials")
        assert token["scope"] == "system/MedicationRequest.crs"
        response = await client.get(
            "/fhir/MedicationRequest",
            params={"status": "active"},
            headers={"Accept": "application/fhir+json"},
        )
        assert response.status_code == 200
