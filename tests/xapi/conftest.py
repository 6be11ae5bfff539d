"""The settings and database fixtures of the API tests, for the XenAPI tests too."""

from tests.api.conftest import database, database_url, settings

__all__ = ["database", "database_url", "settings"]
