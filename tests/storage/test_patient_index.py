"""Migration 0012 (issue 18): a patient's current rows are indexed with their authored date, in
place of the index on (resource_type, is_current, patient_hmac), on both databases; downgrading
puts the old index back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from gateway.db import sync_url
from gateway.migrate import downgrade, upgrade

NEW = "ix_rv_current_patient_authored"
OLD = "ix_rv_current_patient"


def indexes(url: str) -> dict[str, list[str | None]]:
    engine = create_engine(sync_url(url))
    try:
        found = inspect(engine).get_indexes("resource_versions")
    finally:
        engine.dispose()
    return {str(index["name"]): list(index["column_names"]) for index in found}


def test_the_patient_index_carries_the_authored_date(database_url: str) -> None:
    found = indexes(database_url)
    assert found[NEW] == ["resource_type", "is_current", "patient_hmac", "authored_on"]
    assert OLD not in found


def test_a_patients_search_by_date_uses_it_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        plan = connection.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT logical_id FROM resource_versions"
                " WHERE resource_type = 'MedicationRequest' AND is_current = 1"
                " AND patient_hmac = 'h' AND deleted = 0 ORDER BY authored_on LIMIT 11"
            )
        ).all()
    engine.dispose()
    assert any(NEW in str(row) for row in plan), plan
    assert not any("TEMP B-TREE" in str(row) for row in plan), plan  # no sort step


def test_downgrade_restores_the_old_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    upgrade(url)
    downgrade(url, "0013")
    found = indexes(url)
    assert found[OLD] == ["resource_type", "is_current", "patient_hmac"]
    assert NEW not in found
    upgrade(url)
    assert NEW in indexes(url)
