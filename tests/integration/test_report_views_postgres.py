"""The reporting views on the harness's PostgreSQL, in a schema of this module's own.

Runs the shared contract of ``tests/unit/test_report_views.py``: the hand-made scenario written
through the decoder and the writer, every report's expected rows (read in a session whose time
zone is Tokyo's, so that a view taking the session's date instead of the UTC date would fail),
the catalog's columns against the views', and the filters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sink.schema_check import migrate
from tests.integration.conftest import Services
from tests.integration.test_writer_postgres import schema_url
from tests.report_scenario import tz_engine, write_scenario
from tests.unit.test_report_views import ViewsContract


@pytest.fixture(scope="module")
def postgres_views(services: Services) -> Iterator[sa.Engine]:
    schema = f"test_views_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(services.database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = schema_url(services, schema)
        migrate(url)
        write_scenario(url)
        engine = tz_engine(services.database_url, search_path=schema)
        yield engine
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class TestPostgresViews(ViewsContract):
    @pytest.fixture
    def engine(self, postgres_views: sa.Engine) -> sa.Engine:
        return postgres_views
