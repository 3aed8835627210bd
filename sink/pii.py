"""The PII policy: what the writer does with personal values before they reach the database.

Personal columns are those :mod:`sink.flatten` flags ``personal`` (``*__pii__*``, e-mail addresses,
names, free text written by learners...). ``SINK_PII`` picks one of three policies:

* ``drop`` (default): the column stays and its value is NULL (personal columns are always
  nullable, even where upstream requires the value, e.g. ``user__pii__username``). Child tables
  made only of personal columns (``learning_ora_submission__answer__parts``, ``…__file_names``...)
  store **no rows**: a list of dropped values tells nothing but its length, and sibling lists
  (``…__file_sizes``) keep that.
* ``hash``: keyed HMAC-SHA256 of the value, as 64 hex digits. The key is the secret
  ``SINK_PII_HASH_KEY``, so one username or e-mail address hashes equally in every table and
  event (joins and counts of distinct users still work) while nobody without the key can test a
  guess. JSON values keep their structure and keys; every string and number in them is hashed,
  booleans and nulls are kept.
* ``keep``: values are stored as sent.

The two JSON documents of tracking logs, ``analytics_tracking_log.data`` and ``.context``, are
what analytics queries read, so they are never dropped whole (a decision of the team lead):
instead the values of the keys in :data:`PERSONAL_JSON_KEYS`, at any depth, get the policy
(``drop`` → JSON null, ``hash`` → HMAC, ``keep`` → as is). The list is here, in one place.

A :class:`Pii` compiles one :data:`Redactor` per table, applied to freshly built rows (never to
the decoded events themselves).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from sink import tables
from sink.config import PII_POLICIES, PiiPolicy, Settings
from sink.errors import ConfigError
from sink.flatten import CHILD_KEY_COLUMNS, Column, LogicalType

#: Keys of tracking-log JSON documents whose values are personal, compared case-insensitively.
PERSONAL_JSON_KEYS: Final[frozenset[str]] = frozenset(
    {
        "username",
        "email",
        "name",
        "full_name",
        "first_name",
        "last_name",
        "ip",
        "agent",
        "user_agent",
        "session",
        "anonymous_id",
        "anonymous_user_id",
        "client_id",
    }
)

#: JSON columns redacted key by key (:data:`PERSONAL_JSON_KEYS`) rather than whole.
JSON_KEY_COLUMNS: Final[frozenset[tuple[str, str]]] = frozenset(
    {("analytics_tracking_log", "data"), ("analytics_tracking_log", "context")}
)

#: Rewrites the personal values of one row in place.
Redactor = Callable[[dict[str, Any]], None]

#: What a policy does to one value.
Transform = Callable[[Any], Any]

_HASH_CACHE_SIZE: Final = 65_536
_CHILD_KEYS: Final = frozenset(column.name for column in CHILD_KEY_COLUMNS)


def is_json_key_column(table: str, column: str) -> bool:
    """Whether ``table.column`` is redacted key by key (tracking-log documents)."""
    return (table, column) in JSON_KEY_COLUMNS


def redact_json_keys(document: Any, transform: Transform) -> Any:
    """``document`` with ``transform`` applied to the values of personal keys, at any depth.

    Returns a new document when something changed; the input is never modified.
    """
    if isinstance(document, dict):
        return {
            key: transform(value) if _is_personal_key(key) else redact_json_keys(value, transform)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [redact_json_keys(item, transform) for item in document]
    return document


def _is_personal_key(key: object) -> bool:
    return isinstance(key, str) and key.lower() in PERSONAL_JSON_KEYS


def json_has_personal_value(document: Any) -> bool:
    """Whether a personal key of ``document`` holds something other than JSON null."""
    if isinstance(document, dict):
        return any(
            value is not None if _is_personal_key(key) else json_has_personal_value(value)
            for key, value in document.items()
        )
    if isinstance(document, list):
        return any(json_has_personal_value(item) for item in document)
    return False


class Pii:
    """One PII policy with its key, compiled into per-table redactors.

    Args:
        policy: ``drop``, ``hash`` or ``keep``.
        key: The HMAC key; required by ``hash``, ignored otherwise.

    Raises:
        ConfigError: Unknown policy, or ``hash`` without a key.
    """

    def __init__(self, policy: PiiPolicy = "drop", key: bytes | None = None) -> None:
        if policy not in PII_POLICIES:
            raise ConfigError(f"SINK_PII must be one of {', '.join(PII_POLICIES)}; got {policy!r}")
        if policy == "hash" and not key:
            raise ConfigError("SINK_PII=hash needs a secret key: set SINK_PII_HASH_KEY")
        self.policy: PiiPolicy = policy
        self._key = key or b""
        self._redactors: dict[str, Redactor | None] = {}
        self.hash_text = functools.lru_cache(maxsize=_HASH_CACHE_SIZE)(self._hmac)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pii:
        """The policy and key of the sink's settings."""
        key = None if settings.pii_hash_key is None else settings.pii_hash_key.value.encode()
        return cls(settings.pii, key)

    def _hmac(self, text: str) -> str:
        """HMAC-SHA256 of ``text`` (UTF-8) under the key, as 64 hex digits."""
        data = text.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    # --- values ----------------------------------------------------------------------------------

    def hash_json(self, value: Any) -> Any:
        """``value`` with every string and number hashed; structure, booleans and nulls kept."""
        if isinstance(value, dict):
            return {key: self.hash_json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.hash_json(item) for item in value]
        if isinstance(value, str):
            return self.hash_text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.hash_text(repr(value))
        return value

    def _json_key_value(self, value: Any) -> Any:
        """The policy applied to the value of a personal key inside a tracking-log document."""
        if self.policy == "drop" or value is None:
            return None
        return self.hash_json(value) if self.policy == "hash" else value

    def transform(self, table: str, column: Column) -> Transform | None:
        """What the policy does to a non-NULL value of ``table.column``; None: nothing."""
        if not column.personal or self.policy == "keep":
            return None
        if is_json_key_column(table, column.name):
            return self._redact_document
        if self.policy == "drop":
            return _dropped
        return self._hasher(table, column)

    def _redact_document(self, document: Any) -> Any:
        return redact_json_keys(document, self._json_key_value)

    def _hasher(self, table: str, column: Column) -> Transform:
        if column.type is LogicalType.TEXT:
            return cast(Transform, self.hash_text)
        if column.type is LogicalType.JSON:
            return self.hash_json
        raise TypeError(f"{table}.{column.name}: cannot hash a personal {column.type} column")

    # --- rows ------------------------------------------------------------------------------------

    def redactor(self, table: str) -> Redactor | None:
        """The function rewriting the personal values of a row of ``table``; None if none."""
        if table not in self._redactors:
            self._redactors[table] = self._compile(table, tables.columns_of(table))
        return self._redactors[table]

    def _compile(self, table: str, columns: Mapping[str, Column]) -> Redactor | None:
        transforms = [
            (name, transform)
            for name, column in columns.items()
            if (transform := self.transform(table, column)) is not None
        ]
        if not transforms:
            return None

        def redact(row: dict[str, Any]) -> None:
            for name, transform in transforms:
                if (value := row.get(name)) is not None:
                    row[name] = transform(value)

        return redact

    def keeps_child_rows(self, child_table: str) -> bool:
        """Whether rows of ``child_table`` are stored at all (see ``drop`` in the module doc)."""
        if self.policy != "drop":
            return True
        payload = [
            column
            for name, column in tables.columns_of(child_table).items()
            if name not in _CHILD_KEYS
        ]
        return not all(column.personal for column in payload)


def _dropped(_value: Any) -> None:
    """``drop``: a personal value becomes NULL."""
