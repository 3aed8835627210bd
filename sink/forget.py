"""``sink forget-user USER_ID``: erase the personal values of one user from every table.

The Open edX user retirement use case. In **one transaction**, :func:`forget_user` finds the rows
of the user and overwrites their personal columns (those :mod:`sink.flatten` flags ``personal``)
with NULL (personal columns are always nullable). It reports the rows it
changed per table; running it again changes nothing.

Which personal columns belong to whom. Each row may name several people, e.g. an enrollment's
``user`` and its ``created_by``; a personal column belongs to the user-id column of the record it
sits in (``created_by__pii__email`` to ``created_by__id``). Personal columns outside any record
with a user id (``learning_certificate.name``, ``learning_discussion_thread.body``,
``learning_lti_provider_launch.launch_params__*``, and every personal column of child tables)
describe the row's subject and belong to every user id of the row, including ids in child tables
(``learning_user_notification__user_ids``). The user is found:

* by user id, in every user-id column (``user__id``, ``created_by__id``, ``lms_user_id``...);
* by identifier: the usernames and e-mail addresses stored in the rows found by id (whatever
  the PII policy made of them: plain or hashed), plus any ``also`` identifiers given (e.g. the
  anonymous ids of ORA submissions, which carry no LMS user id), compared with every personal
  text column — so the user's username is also erased where it appears as ``created_by`` without
  an id, and as a CCX ``coach_email``;
* in tracking logs (``analytics_tracking_log``), by ``context.user_id`` or ``context.username``:
  there the personal keys of :data:`sink.pii.PERSONAL_JSON_KEYS` inside ``data`` and ``context``
  are set to JSON null, the rest of the documents is kept.

* in dead letters (``sink_dead_letter``), whose raw key and value are the message as received:
  a letter whose raw bytes hold one of the identifiers, or that decodes (with the decoder given:
  the registry and catalog as configured now) to an event naming the user id, keeps its location,
  headers and reason, but its key and value are set to NULL and its reason says so. A letter that
  cannot be decoded (the usual reason it is a dead letter) can only be searched for identifiers,
  not for the numeric id: their number is logged, to review with ``sink dlq list``.

Not covered: rows that name the user only by an identifier not given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

import attrs
import sqlalchemy as sa

from sink import flatten, pii, tables
from sink.decoder import DecodedEvent, Decoder
from sink.errors import MessageLocation, SinkError
from sink.flatten import Column, LogicalType, TableModel
from sink.tables import sink_dead_letter
from sink.writer.bookkeeping import decode_headers

log = logging.getLogger(__name__)

#: Leaf names of the personal columns whose values identify a user (collected as identifiers).
IDENTIFIER_LEAVES: Final = frozenset({"username", "email"})
TRACKING_LOG: Final = "analytics_tracking_log"
#: Appended to the reason of a dead letter whose raw message was erased.
ERASED_NOTE: Final = " [raw key and value erased by sink forget-user]"

Condition = sa.ColumnElement[bool]


@attrs.frozen
class _Group:
    """Personal columns of one table that belong to the same person.

    Attributes:
        columns: The personal columns.
        user_ids: The user-id columns of that person (empty: every user id of the row).
    """

    columns: tuple[Column, ...]
    user_ids: tuple[Column, ...]


def forget_user(
    engine: sa.Engine,
    user_id: int,
    *,
    also: Iterable[str] = (),
    pii_key: bytes | None = None,
    decoder: Decoder | None = None,
) -> dict[str, int]:
    """Erase every personal value of the user ``user_id``, in one transaction.

    Args:
        engine: The warehouse.
        user_id: The LMS user id.
        also: More identifiers of the user (old usernames, anonymous ids...), matched against
            every personal text column.
        pii_key: The ``SINK_PII_HASH_KEY``, if the warehouse was written with ``SINK_PII=hash``:
            ``also`` identifiers are then matched in their hashed form too.
        decoder: Decodes dead letters to look for the user id in them; default: the sink's own
            schemas, without a registry.

    Returns:
        Rows changed per table (tables without changes left out).

    Raises:
        SinkError: A dead letter could not be checked because a service is unavailable (the
            registry): nothing was changed; run it again.
    """
    extra = set(also)
    if pii_key:
        hashing = pii.Pii("hash", pii_key)
        extra |= {hashing.hash_text(identifier) for identifier in extra}
    changed: dict[str, int] = {}
    with engine.begin() as connection:
        identifiers = sorted(_identifiers(connection, user_id) | extra)
        for model in flatten.all_models():
            if model.name == TRACKING_LOG:
                continue
            _count(changed, _forget_in(connection, model, user_id, identifiers))
        _count(changed, _forget_in_tracking_logs(connection, user_id, identifiers))
        # Hashed identifiers never occur in raw messages; searching for them too is harmless.
        decoder = decoder or Decoder()
        _count(changed, _forget_in_dead_letters(connection, user_id, identifiers, decoder))
    return dict(sorted(changed.items()))


def _count(changed: dict[str, int], counts: dict[str, int]) -> None:
    for table, number in counts.items():
        if number:
            changed[table] = changed.get(table, 0) + number


# --- the personal columns of a table, by owner ----------------------------------------------------


def _user_id_columns(columns: Iterable[Column]) -> tuple[Column, ...]:
    return tuple(column for column in columns if column.user_id)


def _personal(model_name: str, columns: Iterable[Column]) -> tuple[Column, ...]:
    return tuple(
        column
        for column in columns
        if column.personal and not pii.is_json_key_column(model_name, column.name)
    )


def _groups(model: TableModel) -> list[_Group]:
    """The personal columns of a parent table, grouped by owner (see the module docstring)."""
    user_ids = _user_id_columns(model.columns)
    records = {column.path[:-1]: column for column in user_ids if len(column.path) > 1}
    longest_first = sorted(records, key=len, reverse=True)
    owned: dict[tuple[str, ...], list[Column]] = {}
    for column in _personal(model.name, model.columns):
        prefix = next((p for p in longest_first if column.path[: len(p)] == p), ())
        owned.setdefault(prefix, []).append(column)
    return [
        _Group(tuple(columns), (records[prefix],) if prefix else ())
        for prefix, columns in owned.items()
    ]


def _any_not_redacted(table: sa.Table, columns: Iterable[Column]) -> Condition:
    """Some of the columns still hold a value (a redacted value is NULL)."""
    return sa.or_(*(table.c[column.name].is_not(None) for column in columns))


def _identifier_match(
    table: sa.Table, columns: Iterable[Column], identifiers: list[str]
) -> list[Condition]:
    if not identifiers:
        return []
    return [
        table.c[column.name].in_(identifiers)
        for column in columns
        if column.type is LogicalType.TEXT
    ]


# --- finding the user -----------------------------------------------------------------------------


def _row_matches(model: TableModel, user_id: int) -> list[Condition]:
    """Conditions on the parent table: one per user-id column, in it or in a child table."""
    table = tables.table_for(model.name)
    matches: list[Condition] = [
        table.c[column.name] == user_id for column in _user_id_columns(model.columns)
    ]
    for child in model.children:
        child_table = tables.table_for(child.name)
        for column in _user_id_columns(child.columns):
            ids = sa.select(child_table.c.event_id).where(child_table.c[column.name] == user_id)
            matches.append(table.c.event_id.in_(ids))
    return matches


def _group_condition(
    model: TableModel, group: _Group, user_id: int, identifiers: list[str]
) -> Condition | None:
    table = tables.table_for(model.name)
    if group.user_ids:
        by_id = [table.c[column.name] == user_id for column in group.user_ids]
    else:
        by_id = _row_matches(model, user_id)
    matches = [*by_id, *_identifier_match(table, group.columns, identifiers)]
    return sa.or_(*matches) if matches else None


def _identifiers(connection: sa.Connection, user_id: int) -> set[str]:
    """Usernames and e-mail addresses stored with the user's id, as stored (plain or hashed)."""
    found: set[str] = set()
    for model in flatten.all_models():
        table = tables.table_for(model.name)
        for group in _groups(model):
            columns = [c for c in group.columns if c.path and c.path[-1] in IDENTIFIER_LEAVES]
            condition = _group_condition(model, group, user_id, [])
            if not columns or condition is None:
                continue
            query = sa.select(*(table.c[c.name] for c in columns)).where(condition).distinct()
            for row in connection.execute(query):
                found.update(value for value in row if value)
    return found


# --- erasing --------------------------------------------------------------------------------------


def _forget_in(
    connection: sa.Connection, model: TableModel, user_id: int, identifiers: list[str]
) -> dict[str, int]:
    """Erase the user's personal values in a parent table and its child tables."""
    table = tables.table_for(model.name)
    conditions: list[tuple[_Group, Condition]] = []
    for group in _groups(model):
        condition = _group_condition(model, group, user_id, identifiers)
        if condition is not None:
            conditions.append((group, condition))
    counts = _forget_in_children(connection, model, user_id, identifiers)
    changed: set[str] = set()
    for group, condition in conditions:
        pending = sa.and_(condition, _any_not_redacted(table, group.columns))
        ids = connection.execute(sa.select(table.c.event_id).where(pending)).scalars().all()
        if ids:
            changed.update(ids)
            values = dict.fromkeys((column.name for column in group.columns), None)
            connection.execute(table.update().where(table.c.event_id.in_(ids)).values(values))
    counts[model.name] = len(changed)
    return counts


def _forget_in_children(
    connection: sa.Connection, model: TableModel, user_id: int, identifiers: list[str]
) -> dict[str, int]:
    """Erase the personal child rows of the user's events (the row's subject: every user id)."""
    parent = tables.table_for(model.name)
    row_group = _Group(_personal(model.name, model.columns), ())
    condition = _group_condition(model, row_group, user_id, identifiers)
    counts: dict[str, int] = {}
    for child in model.children:
        columns = _personal(child.name, child.columns)
        if not columns:
            continue
        table = tables.table_for(child.name)
        own = _identifier_match(table, columns, identifiers)
        by_parent = [] if condition is None else [table.c.event_id.in_(
            sa.select(parent.c.event_id).where(condition)
        )]  # fmt: skip
        if not own and not by_parent:
            continue
        pending = sa.and_(sa.or_(*by_parent, *own), _any_not_redacted(table, columns))
        counting = sa.select(sa.func.count()).select_from(table).where(pending)
        number = connection.execute(counting).scalar_one()
        if number:
            values = dict.fromkeys((column.name for column in columns), None)
            connection.execute(table.update().where(pending).values(values))
            counts[child.name] = number
    return counts


# --- tracking logs --------------------------------------------------------------------------------


def _json_text(connection: sa.Connection, column: sa.Column[Any], key: str) -> Any:
    """The value under ``key`` of the JSON object in ``column``, as text (NULL if none)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return column.op("->>")(key)
    if dialect == "duckdb":
        return sa.func.json_extract_string(column, f"$.{key}")
    return sa.cast(sa.func.json_extract(column, f"$.{key}"), sa.Text)


def _forget_in_tracking_logs(
    connection: sa.Connection, user_id: int, identifiers: list[str]
) -> dict[str, int]:
    """Null the personal keys of the user's tracking-log documents."""
    log = tables.table_for(TRACKING_LOG)
    matches: list[Condition] = [_json_text(connection, log.c.context, "user_id") == str(user_id)]
    if identifiers:
        matches.append(_json_text(connection, log.c.context, "username").in_(identifiers))
    query = sa.select(log.c.event_id, log.c.data, log.c.context).where(sa.or_(*matches))
    updates = [
        {"id": event_id, "data": _drop_keys(data), "context": _drop_keys(context)}
        for event_id, data, context in connection.execute(query)
        if pii.json_has_personal_value(data) or pii.json_has_personal_value(context)
    ]
    if updates:
        statement = (
            log.update()
            .where(log.c.event_id == sa.bindparam("id"))
            .values(data=sa.bindparam("data"), context=sa.bindparam("context"))
        )
        connection.execute(statement, updates)
    return {TRACKING_LOG: len(updates)}


def _drop_keys(document: Any) -> Any:
    return pii.redact_json_keys(document, lambda _value: None)


# --- dead letters -------------------------------------------------------------------------------


def _forget_in_dead_letters(
    connection: sa.Connection, user_id: int, identifiers: list[str], decoder: Decoder
) -> dict[str, int]:
    """Erase the raw key and value of the dead letters naming the user (see the module doc)."""
    needles = [identifier.encode() for identifier in identifiers if identifier]
    letters = sink_dead_letter.c
    query = sa.select(
        letters.id, letters.topic, letters.partition, letters.offset, letters.key,
        letters.value, letters.headers,
    ).where(sa.or_(letters.key.is_not(None), letters.value.is_not(None)))  # fmt: skip
    erase: list[int] = []
    unreadable = 0
    for row in connection.execute(query):
        headers = decode_headers(row.headers)
        if _holds_any(needles, row.key, row.value, *(value for _name, value in headers)):
            erase.append(row.id)
            continue
        location = MessageLocation(row.topic, row.partition, row.offset)
        event = _decoded(decoder, row.value, headers, location, row.key)
        if event is None:
            unreadable += 1
        elif _names_user(event, user_id):
            erase.append(row.id)
    if unreadable:
        log.warning(
            "%d dead letter(s) cannot be decoded: they were searched for the user's identifiers "
            "only, not for the numeric user id; review them with `sink dlq list`",
            unreadable,
        )
    if erase:
        erased = {"key": None, "value": None, "error_message": letters.error_message + ERASED_NOTE}
        connection.execute(sink_dead_letter.update().where(letters.id.in_(erase)).values(erased))
    return {sink_dead_letter.name: len(erase)}


def _holds_any(needles: list[bytes], *haystacks: bytes | None) -> bool:
    return any(needle in haystack for haystack in haystacks if haystack for needle in needles)


def _decoded(
    decoder: Decoder,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    location: MessageLocation,
    key: bytes | None,
) -> DecodedEvent | None:
    """The dead letter decoded, or None when it is poison (services unavailable: raised)."""
    try:
        return decoder.decode(value, headers, location, key)
    except SinkError as error:
        if not error.poison:
            raise
        return None


def _names_user(event: DecodedEvent, user_id: int) -> bool:
    """Whether a user-id column of the event's rows (or a tracking log's context) holds the id."""
    flat = flatten.flatten(event.spec, event.data, event.event_id)
    for table, rows in ((event.spec.table, [flat.row]), *flat.children.items()):
        names = [name for name, column in tables.columns_of(table).items() if column.user_id]
        if any(row.get(name) == user_id for row in rows for name in names):
            return True
    context = flat.row.get("context") if event.spec.table == TRACKING_LOG else None
    return isinstance(context, dict) and context.get("user_id") == user_id
