"""The PII policy: drop, hash and keep, on every personal column of every table.

Random payloads of every class are flattened, then redacted; each column is checked against what
its policy promises, and non-personal columns must come out untouched.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sink import flatten, pii, tables
from sink.config import Secret, Settings
from sink.errors import ConfigError
from sink.flatten import Column, LogicalType
from sink.pii import Pii
from tests.unit.test_flatten import MODELS, payloads

KEY = b"k3y"
EVENT_ID = "e0"


def reference_hmac(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


# --- construction ---------------------------------------------------------------------------------


def test_hash_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="SINK_PII_HASH_KEY"):
        Pii("hash")


def test_unknown_policy() -> None:
    with pytest.raises(ConfigError, match="SINK_PII"):
        Pii(cast(Any, "scramble"))


def test_from_settings() -> None:
    policy = Pii.from_settings(Settings(pii="hash", pii_hash_key=Secret("k3y")))
    assert policy.policy == "hash"
    assert policy.hash_text("alice") == reference_hmac("alice")
    assert Pii.from_settings(Settings()).policy == "drop"


def test_hash_is_keyed_hmac_sha256() -> None:
    assert Pii("hash", KEY).hash_text("alice") == reference_hmac("alice")
    assert Pii("hash", b"other").hash_text("alice") != reference_hmac("alice")
    assert len(Pii("hash", KEY).hash_text("")) == 64


# --- values ---------------------------------------------------------------------------------------


def test_dropped_value_is_null() -> None:
    text = Column("a", LogicalType.TEXT, nullable=True, personal=True)
    document = Column("b", LogicalType.JSON, nullable=True, personal=True)
    drop = Pii("drop", None)
    for column in (text, document):
        transform = drop.transform("learning_user", column)
        assert transform is not None
        assert transform("alice") is None


def test_hash_json_keeps_structure() -> None:
    hashing = Pii("hash", KEY)
    value = {"name": "Ann", "n": 3, "ok": True, "none": None, "list": ["x", 1.5]}
    assert hashing.hash_json(value) == {
        "name": reference_hmac("Ann"),
        "n": reference_hmac("3"),
        "ok": True,
        "none": None,
        "list": [reference_hmac("x"), reference_hmac("1.5")],
    }


def test_personal_json_keys_at_any_depth() -> None:
    document = {
        "Username": "ann",
        "course_id": "c",
        "event": {"answers": [{"email": "a@x", "value": 1}], "ip": {"v4": "1.2.3.4"}},
    }
    frozen = copy.deepcopy(document)
    redacted = pii.redact_json_keys(document, lambda _value: None)
    assert redacted == {
        "Username": None,
        "course_id": "c",
        "event": {"answers": [{"email": None, "value": 1}], "ip": None},
    }
    assert document == frozen
    assert pii.json_has_personal_value(document)
    assert not pii.json_has_personal_value(redacted)
    assert pii.redact_json_keys("plain text", lambda _value: None) == "plain text"


def test_personal_json_keys_are_lower_case() -> None:
    assert all(key == key.lower() for key in pii.PERSONAL_JSON_KEYS)
    assert {"username", "email", "ip", "agent", "session"} <= pii.PERSONAL_JSON_KEYS


def test_key_redacted_columns_are_personal_json_columns() -> None:
    for table, column in pii.JSON_KEY_COLUMNS:
        model = tables.columns_of(table)[column]
        assert (model.type, model.personal) == (LogicalType.JSON, True)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("drop", {"username": None, "ip": None, "page": "/x"}),
        ("hash", {"username": reference_hmac("ann"), "ip": reference_hmac("::1"), "page": "/x"}),
        ("keep", {"username": "ann", "ip": "::1", "page": "/x"}),
    ],
)
def test_tracking_log_documents_keep_their_non_personal_keys(
    policy: Any, expected: dict[str, Any]
) -> None:
    redact = Pii(policy, KEY).redactor("analytics_tracking_log")
    row = {"name": "n", "context": {"username": "ann", "ip": "::1", "page": "/x"}, "data": "text"}
    if redact is not None:
        redact(row)
    assert row == {"name": "n", "context": expected, "data": "text"}


# --- rows of every table --------------------------------------------------------------------------


def test_every_personal_column_can_be_hashed() -> None:
    hashing = Pii("hash", KEY)
    for name in tables.metadata.tables:
        if not name.startswith("sink_"):
            hashing.redactor(name)


def test_child_rows_of_personal_lists_are_not_stored_when_dropped() -> None:
    dropping, hashing = Pii("drop"), Pii("hash", KEY)
    ora = "learning_ora_submission__answer__"
    assert not dropping.keeps_child_rows(f"{ora}file_names")
    assert not dropping.keeps_child_rows(f"{ora}parts")
    assert dropping.keeps_child_rows(f"{ora}file_sizes")
    assert dropping.keeps_child_rows("learning_user_notification__user_ids")
    assert hashing.keeps_child_rows(f"{ora}file_names")


def _expected(policy: str, table: str, column: Column, value: Any) -> Any:
    if value is None or not column.personal or policy == "keep":
        return value
    if pii.is_json_key_column(table, column.name):
        hashing = Pii("hash", KEY)
        transform = hashing.hash_json if policy == "hash" else (lambda _value: None)
        return pii.redact_json_keys(value, transform)
    if policy == "drop":
        return None
    if column.type is LogicalType.TEXT:
        return reference_hmac(value)
    return Pii("hash", KEY).hash_json(value)


def _check_row(policy: Any, table: str, row: dict[str, Any]) -> None:
    original = copy.deepcopy(row)
    if (redact := Pii(policy, KEY).redactor(table)) is not None:
        redact(row)
    columns = tables.columns_of(table)
    assert row.keys() == original.keys()
    for name, value in original.items():
        assert row[name] == _expected(policy, table, columns[name], value), (table, name)


@pytest.mark.parametrize("policy", ["drop", "hash", "keep"])
@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_redactors_apply_the_policy_to_exactly_the_personal_columns(
    policy: str, model: flatten.TableModel
) -> None:
    @settings(max_examples=15, deadline=None)
    @given(payloads(model.data_class))
    def check(payload: Any) -> None:
        rows = flatten.flattener(model.data_class, model.name)(payload, EVENT_ID)
        _check_row(policy, model.name, rows.row)
        for child, child_rows in rows.children.items():
            for row in child_rows:
                _check_row(policy, child, row)

    check()


@given(st.text())
def test_hashing_the_same_text_twice_gives_the_same_hash(text: str) -> None:
    hashing = Pii("hash", KEY)
    assert hashing.hash_text(text) == hashing.hash_text(text)
    assert hashing.hash_text(text) == Pii("hash", KEY).hash_text(text)
