"""The warehouse writer: batches of decoded events into SQL tables, exactly once.

* :mod:`sink.writer.warehouse` — :class:`Warehouse`, the dialect-neutral algorithm: one
  transaction per batch, idempotency, dead-lettering rejected rows, error translation.
* :mod:`sink.writer.rows` — events to rows (envelope, flattening, PII policy).
* :mod:`sink.writer.bookkeeping` — dead letters and consumer positions.
* :mod:`sink.writer.failures` — what a database error means (transient, rejected row, ...).
* :mod:`sink.writer.postgres`, :mod:`~sink.writer.sqlite`, :mod:`~sink.writer.duckdb` — each
  database's fast path (:class:`~sink.writer.dialect.Dialect`).
"""

from sink.writer.warehouse import Warehouse

__all__ = ["Warehouse"]
