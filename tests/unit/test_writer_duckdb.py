"""The warehouse writer and ``forget-user`` on DuckDB files in ``tmp_path`` (the ``duckdb`` extra).

The shared contract lives in ``test_writer_sqlite.py``; DuckDB rejects a row genuinely when a
64-bit ``ce_minorversion`` does not fit the ``INTEGER`` column ``minor_version``.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from sink.decoder import DecodedEvent
from sink.schema_check import migrate
from sink.writer import Warehouse
from tests.unit.test_writer_sqlite import (
    ENROLLMENT,
    GROUP,
    HASH_KEY,
    ForgetContract,
    WriterContract,
    batch_of,
    enrollment,
    stored_rows,
)

pytest.importorskip("duckdb_engine")


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A migrated, empty DuckDB warehouse."""
    database = f"duckdb:///{tmp_path / 'sink.duckdb'}"
    migrate(database)
    return database


class TestDuckDBWriter(WriterContract):
    def poison(self, event: DecodedEvent, warehouse: Warehouse) -> DecodedEvent:
        return attrs.evolve(event, metadata=attrs.evolve(event.metadata, minorversion=2**40))

    def test_the_rejection_names_the_duckdb_error(self, warehouse: Warehouse) -> None:
        bad = self.poison(enrollment(1, "a", 0), warehouse)
        warehouse.write(batch_of([bad]), GROUP)
        [letter] = stored_rows(warehouse.engine, "sink_dead_letter")
        assert letter["error_class"] == "ConversionException"
        assert "minor_version" in letter["error_message"]
        assert letter["error_message"].startswith(f"{ENROLLMENT.table}: Conversion Error")


class TestDuckDBForget(ForgetContract):
    pass


class TestDuckDBForgetHashed(ForgetContract):
    @pytest.fixture
    def policy(self) -> tuple[str, bytes | None]:
        return ("hash", HASH_KEY)
