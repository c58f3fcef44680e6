"""A patient's current rows are indexed in each order a search by patient can be sorted in
(issue 18): migration 0012 by authored date, in place of the index on (resource_type, is_current,
patient_hmac), and 0014 by creation, the default order, on both databases; downgrading puts the
old indexes back. On SQLite, which plans without statistics, a search by patient uses them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, inspect, text

from gateway import db
from gateway.migrate import downgrade, upgrade
from gateway.settings import decode_key
from gateway.storage.crypto import Keyring, new_encryption_key
from gateway.storage.records import SORT_KEYS, Cursor, Sort
from gateway.storage.store import Criteria, ResourceStore

NEW = "ix_rv_current_patient_authored"
CREATED = "ix_rv_current_patient_created"
OLD = "ix_rv_current_patient"


def indexes(url: str) -> dict[str, list[str | None]]:
    engine = create_engine(db.sync_url(url))
    try:
        found = inspect(engine).get_indexes("resource_versions")
    finally:
        engine.dispose()
    return {str(index["name"]): list(index["column_names"]) for index in found}


def test_the_patient_indexes_carry_the_search_orders(database_url: str) -> None:
    found = indexes(database_url)
    assert found[NEW] == ["resource_type", "is_current", "patient_hmac", "authored_on"]
    assert found[CREATED] == [
        "resource_type",
        "is_current",
        "patient_hmac",
        "created_at",
        "logical_id",
    ]
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


def test_downgrade_restores_the_old_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/g.db"
    upgrade(url)
    downgrade(url, "0012")
    assert CREATED not in indexes(url)
    assert NEW in indexes(url)
    downgrade(url, "0013")
    found = indexes(url)
    assert found[OLD] == ["resource_type", "is_current", "patient_hmac"]
    assert NEW not in found
    upgrade(url)
    assert {NEW, CREATED} <= set(indexes(url))


SORTS = [Sort(key, descending) for key in SORT_KEYS for descending in (True, False)]


@pytest.mark.parametrize("paged", [False, True], ids=["first page", "next page"])
@pytest.mark.parametrize("sort", SORTS, ids=lambda s: f"{'-' if s.descending else ''}{s.key}")
async def test_a_patients_search_reads_his_rows_only_on_sqlite(
    tmp_path: Path, sort: Sort, paged: bool
) -> None:
    """Whatever the order asked for, the count and the page of a search by patient (as a
    prescriber's, with its author condition) go through a patient index. Without statistics,
    SQLite chose the type-wide index that already holds the order (``ix_rv_current_created``,
    the default ``created`` sort) and walked every patient's current prescriptions until it had
    a page: a search's cost grew with the database (bench/README.md)."""
    url = f"sqlite:///{tmp_path}/g.db"
    upgrade(url)
    engine = db.create_engine(url)
    sent: list[tuple[str, Any]] = []

    def remember(_c: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        sent.append((sql, params))

    event.listen(engine.sync_engine, "after_cursor_execute", remember)
    cursor = Cursor(datetime(2026, 3, 1, tzinfo=UTC), "some-id", sort) if paged else None
    async with db.session_factory(engine)() as session:
        store = ResourceStore(session, Keyring(decode_key(new_encryption_key())))
        criteria = Criteria(patient_ssin="85073003328", author_nihdi="10000000004")
        await store.search("MedicationRequest", criteria, count=10, sort=sort, cursor=cursor)
    await engine.dispose()

    assert len(sent) == 2  # the count, then the page
    check = create_engine(url)
    with check.connect() as connection:
        for sql, params in sent:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            used = [str(row[-1]) for row in plan if "resource_versions" in str(row[-1])]
            assert used, plan
            assert all("ix_rv_current_patient_" in step for step in used), (sql, plan)
    check.dispose()
