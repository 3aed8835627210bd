"""Reports over the warehouse: the reporting views Alembic creates, ``sink report``, the HTML page."""
