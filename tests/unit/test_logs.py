"""Logging set-up: what reaches the operator."""

from __future__ import annotations

import logging

import pytest

from sink.logs import configure_logging


@pytest.mark.parametrize("name", ["httpx", "httpx2"])
def test_http_client_requests_are_not_logged_at_info(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", "INFO")
    logging.getLogger(name).info("HTTP Request: GET http://registry/schemas/ids/1")
    logging.getLogger(name).warning("registry slow")
    logging.getLogger("sink.daemon").info("assigned t[0]@beginning")
    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert "registry slow" in err
    assert "assigned t[0]@beginning" in err


def test_debug_level_is_not_raised_for_the_sink() -> None:
    configure_logging("json", "DEBUG")
    assert logging.getLogger("sink").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("httpx2").getEffectiveLevel() == logging.WARNING
