"""``gateway patients set-password``: the password comes from standard input (never the command
line), and the SSIN is checked (ID-2)."""

from __future__ import annotations

import io

import pytest
from fastapi import FastAPI

from gateway.auth.accounts import LoginResult
from gateway.cli import main
from gateway.settings import Settings
from tests.fhir_profiles.factories import SSIN


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.encryption_key is not None
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEY", settings.encryption_key.get_secret_value())


def run(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["patients", "set-password", *args])


async def test_set_password_from_stdin(
    app: FastAPI, cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import anyio

    code = await anyio.to_thread.run_sync(lambda: run(monkeypatch, "a good password\n", SSIN))
    assert code == 0
    assert "account created" in capsys.readouterr().out
    accounts = app.state.auth.accounts
    assert await accounts.authenticate(SSIN, "a good password") is LoginResult.OK
    assert await accounts.authenticate(SSIN, "wrong") is LoginResult.BAD_CREDENTIALS


def test_ID_2_an_invalid_ssin_or_short_password_is_refused(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "a good password\n", "85073003329") == 2
    assert "not a valid SSIN" in capsys.readouterr().err
    assert run(monkeypatch, "short\n", SSIN) == 2
    assert "at least 8" in capsys.readouterr().err
