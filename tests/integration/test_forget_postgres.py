"""``forget-user`` on the harness's PostgreSQL (JSONB documents), in this test's own schema.

Runs the shared contract of ``tests/unit/test_writer_sqlite.py`` with the ``keep`` and ``hash``
policies, then checks that the erasure is one transaction.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from sink import forget
from sink.schema_check import migrate
from sink.writer import Warehouse
from tests.integration.conftest import Services
from tests.integration.test_writer_postgres import schema_url
from tests.unit.test_writer_sqlite import (
    ENROLLMENT,
    HASH_KEY,
    ForgetContract,
    stored_rows,
)


@pytest.fixture
def url(services: Services, pg_schema: str) -> str:
    """This test's schema, migrated."""
    database = schema_url(services, pg_schema)
    migrate(database)
    return database


class TestPostgresForget(ForgetContract):
    def test_forget_is_one_transaction(
        self, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.write_world(warehouse)
        before = stored_rows(warehouse.engine, ENROLLMENT.table)

        def fail(*_args: Any) -> dict[str, int]:
            raise RuntimeError("tracking logs unreachable")

        monkeypatch.setattr(forget, "_forget_in_tracking_logs", fail)
        with pytest.raises(RuntimeError, match="tracking logs unreachable"):
            forget.forget_user(warehouse.engine, self.user_id)
        assert stored_rows(warehouse.engine, ENROLLMENT.table) == before

    def test_an_unknown_user_changes_nothing(self, warehouse: Warehouse) -> None:
        self.write_world(warehouse)
        assert forget.forget_user(warehouse.engine, 424242) == {}

    def test_context_user_id_as_text_matches(self, warehouse: Warehouse) -> None:
        self.write_world(warehouse)
        with warehouse.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE analytics_tracking_log SET context = jsonb_set(context, '{user_id}',"
                    " to_jsonb(context->>'user_id')) WHERE context->>'user_id' = :user"
                ),
                {"user": str(self.user_id)},
            )
        assert forget.forget_user(warehouse.engine, self.user_id)["analytics_tracking_log"] == 2


class TestPostgresForgetHashed(ForgetContract):
    @pytest.fixture
    def policy(self) -> tuple[str, bytes | None]:
        return ("hash", HASH_KEY)
