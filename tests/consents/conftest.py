"""The access fixtures live in ``tests/fixtures/access.py`` (shared with tests/audit)."""

from tests.fixtures.access import OTHER_PHARMACY_NIHDI

__all__ = ["OTHER_PHARMACY_NIHDI"]
