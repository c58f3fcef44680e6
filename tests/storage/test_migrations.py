"""The Alembic migrations run down and up again on a real database (SQLite here; the PostgreSQL run
of the suite migrates its database at session start)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from gateway.migrate import downgrade, upgrade


def test_migrations_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    assert {"resource_versions", "resource_identifiers"} <= set(inspect(engine).get_table_names())
    downgrade(url, "base")
    assert "resource_versions" not in inspect(engine).get_table_names()
    upgrade(url)
    assert "resource_versions" in inspect(engine).get_table_names()
    engine.dispose()
