"""The portal's fixtures (a patient account, a browser-like client), for the ASVS session tests."""

from tests.portal.conftest import accounts, browser

__all__ = ["accounts", "browser"]
