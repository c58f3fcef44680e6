"""Run Alembic migrations programmatically (``gateway db upgrade``, the demo, the tests).

A migration that rewrites data derived from bodies (0007) decrypts them: it takes the ``Keyring``
handed to ``upgrade`` (``config.attributes["keyring"]``), else the key of ``GATEWAY_ENCRYPTION_KEY``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.storage.crypto import Keyring

MIGRATIONS = Path(__file__).parent / "migrations"
KEYRING = "keyring"  # the Alembic config attribute migrations read the keyring from


def alembic_config(database_url: str, keyring: Keyring | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if keyring is not None:
        config.attributes[KEYRING] = keyring
    return config


def upgrade(database_url: str, revision: str = "head", *, keyring: Keyring | None = None) -> None:
    command.upgrade(alembic_config(database_url, keyring), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
