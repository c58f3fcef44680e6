"""The portal's fixtures (a patient account, a browser-like client), for the portal's clock test."""

from tests.portal.conftest import accounts, browser

__all__ = ["accounts", "browser"]
