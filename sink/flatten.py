"""Column model of the warehouse tables, and flattening of payloads into rows.

The payload classes in :mod:`sink.events` are the one source of truth: for each catalog table,
:func:`table_model` walks the attrs fields of its payload class once (cached) and yields

* the **payload columns** of the table: one per leaf attribute, named by its path below the data
  object joined with ``__`` (``user__pii__email``), shortened by :mod:`sink.naming` when longer than
  63 characters; nested records are flattened into their parent, and a nullable record makes all
  of its leaves nullable;
* the **child tables**: one per list attribute, named ``<table>__<path>``, with ``event_id`` (the
  parent's), ``position`` (index in the list) and either ``value`` (list of scalars) or the item
  record's flattened columns (list of records). Lists inside list items are not supported.

Types: ``str`` → text, ``int`` → bigint, ``bool`` → boolean, ``float`` → double, ``datetime`` →
timestamptz (normalised to UTC; a naive value is taken as UTC), ``UUID`` → uuid, opaque keys
(``CourseKey``, ``UsageKey``, ``CCXLocator``) → text (their ``str()``), ``dict[str, X]`` → json.
The JSON-text fields ``TrackingLogData.data`` and ``.context`` become json columns holding the
parsed document; text that is not valid JSON (including ``NaN``/``Infinity``) is kept as a JSON
string, and the text ``null`` becomes SQL NULL (those two columns are therefore nullable).

:func:`flatten` turns one payload into a :class:`Flattened` (the parent row's payload values and
the child rows). Each table gets one generated, compiled Python function (:func:`flattener`), built
once from the model: no reflection per event. The envelope columns (:data:`ENVELOPE_COLUMNS`) are
the writer's to fill.

Personal data (the ``personal`` flag, which the PII policy acts on) is every column whose path has
a ``pii`` segment (``user__pii__username``, ``…__email``, ``…__name``), plus these fields, chosen
one by one (numeric LMS user ids are *not* personal here; they are what ``forget-user`` matches):

* ``CcxCourseData.coach_email`` — an e-mail address.
* ``CertificateData.name`` — the learner's name as printed.
* ``CertificateData.download_url`` — public certificate page showing the learner's name.
* ``ProgramCertificateData.url`` — public credential record showing the learner's name.
* ``VerificationAttemptData.name`` — the name being verified.
* ``DiscussionThreadData.body`` and ``.title`` — free text written by the learner.
* ``ORASubmissionData.anonymous_user_id`` — a stable per-course pseudonym of the learner.
* ``ORASubmissionAnswer.parts``, ``.file_names``, ``.file_descriptions`` — the learner's own text;
  ``.file_keys`` (begin with the anonymous student id) and ``.file_urls`` (reach the files).
* ``ExternalGraderScoreData.user_id`` — text: the submissions API's (anonymous) student id.
* ``LtiProviderLaunchParamsData.user_id`` — the learner's id in the launching LTI consumer;
  ``.extra_params`` — launch parameters, which carry ``lis_person_*`` names and e-mail addresses.
* ``UserNotificationData.context`` and ``CourseNotificationData.content_context`` — template values
  such as the names of the replier and of the post's author.
* ``TrackingLogData.context`` (username, IP address, user agent, session) and ``.data``
  (event-specific, often learner input).

Not personal: display names, titles and descriptions of courses, cohorts, badges and programs;
grades, statuses, roles, modes; URLs of content; ids of records; ``score_msg`` (grader feedback).
"""

from __future__ import annotations

import enum
import keyword
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple
from uuid import UUID

import attrs
from ccx_keys.locator import CCXLocator
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink import catalog, jsontext, naming
from sink.catalog import EventSpec
from sink.events import (
    CcxCourseData,
    CertificateData,
    CourseNotificationData,
    DiscussionThreadData,
    ExternalGraderScoreData,
    LtiProviderLaunchParamsData,
    ORASubmissionAnswer,
    ORASubmissionData,
    ProgramCertificateData,
    TrackingLogData,
    UserNonPersonalData,
    UserNotificationData,
    VerificationAttemptData,
)
from sink.typehints import optional_member


class LogicalType(enum.StrEnum):
    """Dialect-neutral column types; :mod:`sink.tables` maps them to SQLAlchemy types."""

    TEXT = "text"
    INTEGER = "integer"
    BIGINT = "bigint"
    BOOLEAN = "boolean"
    DOUBLE = "double"
    TIMESTAMPTZ = "timestamptz"
    UUID = "uuid"
    JSON = "json"


@attrs.frozen
class Column:
    """One column of a warehouse table.

    Attributes:
        name: SQL name (≤ 63 characters).
        type: Logical type.
        nullable: Whether the column accepts NULL.
        path: Attribute path below the data object (below the list item, in a child table);
            empty for envelope, ``event_id``, ``position`` and ``value`` columns.
        personal: Personal data the PII policy applies to (see the module docstring).
        user_id: Holds a numeric LMS user id (indexed; what ``forget-user`` matches).
        course_key: Holds a course key (indexed).
    """

    name: str
    type: LogicalType
    nullable: bool
    path: naming.Path = ()
    personal: bool = False
    user_id: bool = False
    course_key: bool = False

    @property
    def full_name(self) -> str:
        """The unshortened name: the path joined with ``__`` (the name itself if no path)."""
        return naming.full_name(self.path) if self.path else self.name

    @property
    def shortened(self) -> bool:
        """Whether :mod:`sink.naming` shortened the name."""
        return self.name != self.full_name


@attrs.frozen
class ChildTable:
    """The table of one list attribute.

    Attributes:
        name: SQL name (``<table>__<path>``, shortened like columns).
        full_name: The unshortened name.
        path: Path of the list attribute below the data object.
        columns: Payload columns: ``value``, or the item record's flattened columns. The table
            also has ``event_id`` and ``position`` (:data:`CHILD_KEY_COLUMNS`) first.
        item_class: The attrs class of the items, or ``None`` for a list of scalars.
    """

    name: str
    full_name: str
    path: naming.Path
    columns: tuple[Column, ...]
    item_class: type[Any] | None


@attrs.frozen
class TableModel:
    """The columns and child tables of one catalog table.

    Attributes:
        name: Table name.
        data_class: Payload class stored in it.
        columns: Payload columns, in attribute order (the envelope columns come first in the
            table: :data:`ENVELOPE_COLUMNS`).
        children: Child tables, in attribute order.
    """

    name: str
    data_class: type[Any]
    columns: tuple[Column, ...]
    children: tuple[ChildTable, ...]

    def column(self, name: str) -> Column:
        """The payload column called ``name``.

        Raises:
            KeyError: No payload column has that name.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


class Flattened(NamedTuple):
    """One payload as rows.

    Attributes:
        row: Payload columns of the parent row (column name → value), in column order. The writer
            adds the envelope columns.
        children: Child table name → rows, for every child table (empty list when the list is
            empty). Each row holds ``event_id``, ``position`` and the payload columns.
    """

    row: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]


#: A compiled flattening function: ``(payload, event_id) -> Flattened``.
Flattener = Callable[[Any, str], Flattened]

#: Columns every event table has before its payload columns; the writer fills them.
ENVELOPE_COLUMNS: Final[tuple[Column, ...]] = (
    Column("event_id", LogicalType.TEXT, nullable=False),
    Column("event_type", LogicalType.TEXT, nullable=False),
    Column("event_time", LogicalType.TIMESTAMPTZ, nullable=False),
    Column("event_source", LogicalType.TEXT, nullable=False),
    Column("source_host", LogicalType.TEXT, nullable=False),
    Column("source_lib", LogicalType.TEXT, nullable=False),
    Column("minor_version", LogicalType.INTEGER, nullable=False),
    Column("kafka_topic", LogicalType.TEXT, nullable=False),
    Column("kafka_partition", LogicalType.INTEGER, nullable=False),
    Column("kafka_offset", LogicalType.BIGINT, nullable=False),
    Column("schema_id", LogicalType.INTEGER, nullable=True),
    Column("ingested_at", LogicalType.TIMESTAMPTZ, nullable=False),
)

#: The key columns every child table starts with; its primary key.
CHILD_KEY_COLUMNS: Final[tuple[Column, ...]] = (
    Column("event_id", LogicalType.TEXT, nullable=False),
    Column("position", LogicalType.INTEGER, nullable=False),
)

#: Name of the one payload column of a child table of scalars.
VALUE_COLUMN: Final = "value"

#: Fields holding personal data beyond the ``pii`` records; see the module docstring for why.
PERSONAL_FIELDS: Final[frozenset[tuple[type[Any], str]]] = frozenset(
    {
        (CcxCourseData, "coach_email"),
        (CertificateData, "name"),
        (CertificateData, "download_url"),
        (ProgramCertificateData, "url"),
        (VerificationAttemptData, "name"),
        (DiscussionThreadData, "body"),
        (DiscussionThreadData, "title"),
        (ORASubmissionData, "anonymous_user_id"),
        (ORASubmissionAnswer, "parts"),
        (ORASubmissionAnswer, "file_keys"),
        (ORASubmissionAnswer, "file_descriptions"),
        (ORASubmissionAnswer, "file_names"),
        (ORASubmissionAnswer, "file_urls"),
        (ExternalGraderScoreData, "user_id"),
        (LtiProviderLaunchParamsData, "user_id"),
        (LtiProviderLaunchParamsData, "extra_params"),
        (UserNotificationData, "context"),
        (CourseNotificationData, "content_context"),
        (TrackingLogData, "data"),
        (TrackingLogData, "context"),
    }
)

#: ``str`` fields that carry a JSON document as text: stored parsed, in a json column.
JSON_TEXT_FIELDS: Final[frozenset[tuple[type[Any], str]]] = frozenset(
    {(TrackingLogData, "data"), (TrackingLogData, "context")}
)

_PII_SEGMENT: Final = "pii"
_USER_ID_NAMES: Final = frozenset({"user_id", "lms_user_id", "user_ids"})
_COURSE_KEY_NAMES: Final = frozenset({"course_id", "course_key"})
_KEY_TYPES: Final[tuple[type[Any], ...]] = (CourseKey, UsageKey, CCXLocator)
_COURSE_KEY_TYPES: Final[tuple[type[Any], ...]] = (CourseKey, CCXLocator)


class _Convert(enum.Enum):
    """How a leaf value becomes a column value; names the helper in generated code."""

    AS_IS = None
    KEY = "_key"
    DATETIME = "_utc"
    JSON_TEXT = "_json_text"


_SCALARS: Final[dict[Any, tuple[LogicalType, _Convert]]] = {
    str: (LogicalType.TEXT, _Convert.AS_IS),
    int: (LogicalType.BIGINT, _Convert.AS_IS),
    bool: (LogicalType.BOOLEAN, _Convert.AS_IS),
    float: (LogicalType.DOUBLE, _Convert.AS_IS),
    datetime: (LogicalType.TIMESTAMPTZ, _Convert.DATETIME),
    UUID: (LogicalType.UUID, _Convert.AS_IS),
    **dict.fromkeys(_KEY_TYPES, (LogicalType.TEXT, _Convert.KEY)),
}


# --- the attribute tree of a payload class --------------------------------------------------------


@attrs.frozen
class _Leaf:
    """A scalar (or json) attribute, or the item of a list of scalars (``attr`` empty)."""

    attr: str
    path: naming.Path
    type: LogicalType
    convert: _Convert
    optional: bool  # the value itself may be None
    nullable: bool  # the column may be NULL (optional, or inside a nullable record)
    personal: bool
    user_id: bool
    course_key: bool


@attrs.frozen
class _Record:
    """A nested attrs record (or a list item record, ``attr`` empty)."""

    attr: str
    path: naming.Path
    optional: bool
    cls: type[Any]
    nodes: tuple[_Node, ...]


@attrs.frozen
class _List:
    """A list attribute: becomes a child table."""

    attr: str
    path: naming.Path
    optional: bool
    item: _Leaf | _Record


_Node = _Leaf | _Record | _List


@attrs.frozen
class _Context:
    """What a field inherits from the records around it."""

    owner: type[Any]
    path: naming.Path = ()
    nullable: bool = False
    in_pii: bool = False
    in_list: bool = False

    def enter(self, owner: type[Any], attr: str, *, nullable: bool) -> _Context:
        return _Context(
            owner=owner,
            path=(*self.path, attr),
            nullable=self.nullable or nullable,
            in_pii=self.in_pii or attr == _PII_SEGMENT,
            in_list=self.in_list,
        )


def _record_nodes(cls: type[Any], context: _Context) -> tuple[_Node, ...]:
    """The nodes of every attrs field of ``cls``, in field order."""
    return tuple(
        _node(attribute.name, *_unwrap_optional(attribute), context)
        for attribute in attrs.fields(attrs.resolve_types(cls))
    )


def _node(attr: str, python_type: Any, optional: bool, context: _Context) -> _Node:
    if not attr.isidentifier() or keyword.iskeyword(attr):
        raise TypeError(f"{context.owner.__name__}.{attr} is not a usable attribute name")
    inner = context.enter(context.owner, attr, nullable=optional)
    if isinstance(python_type, type) and attrs.has(python_type):
        nested = attrs.evolve(inner, owner=python_type)
        return _Record(attr, inner.path, optional, python_type, _record_nodes(python_type, nested))
    if typing.get_origin(python_type) is list:
        if context.in_list:
            raise TypeError(f"{context.owner.__name__}.{attr}: lists inside list items")
        return _List(attr, inner.path, optional, _item(python_type, context.owner, attr, inner))
    return _leaf(attr, python_type, optional, context.owner, inner)


def _item(list_type: Any, owner: type[Any], attr: str, context: _Context) -> _Leaf | _Record:
    """The item node of a list: paths restart below the item."""
    item_type, optional = optional_member(typing.get_args(list_type)[0])
    item_context = _Context(owner=owner, in_pii=context.in_pii, in_list=True)
    if isinstance(item_type, type) and attrs.has(item_type):
        if optional:
            raise TypeError(f"{owner.__name__}.{attr}: list items that are None or a record")
        item_context = attrs.evolve(item_context, owner=item_type)
        return _Record("", (), optional, item_type, _record_nodes(item_type, item_context))
    return attrs.evolve(_leaf(attr, item_type, optional, owner, item_context), attr="")


def _leaf(
    attr: str, python_type: Any, optional: bool, owner: type[Any], context: _Context
) -> _Leaf:
    logical, convert = _leaf_type(python_type, owner, attr)
    is_json_text = convert is _Convert.JSON_TEXT
    return _Leaf(
        attr=attr,
        path=context.path,
        type=logical,
        convert=convert,
        optional=optional,
        nullable=context.nullable or optional or is_json_text,
        personal=context.in_pii or _is_personal(owner, attr),
        user_id=python_type is int and _is_user_id(owner, attr),
        course_key=_is_course_key(python_type, attr),
    )


def _leaf_type(python_type: Any, owner: type[Any], attr: str) -> tuple[LogicalType, _Convert]:
    if any((cls, attr) in JSON_TEXT_FIELDS for cls in owner.__mro__):
        return LogicalType.JSON, _Convert.JSON_TEXT
    if typing.get_origin(python_type) is dict:
        return LogicalType.JSON, _Convert.AS_IS
    try:
        return _SCALARS[python_type]
    except KeyError:
        raise TypeError(f"{owner.__name__}.{attr}: no column type for {python_type!r}") from None


def _is_personal(owner: type[Any], attr: str) -> bool:
    return any((cls, attr) in PERSONAL_FIELDS for cls in owner.__mro__)


def _is_user_id(owner: type[Any], attr: str) -> bool:
    return attr in _USER_ID_NAMES or (attr == "id" and issubclass(owner, UserNonPersonalData))


def _is_course_key(python_type: Any, attr: str) -> bool:
    if isinstance(python_type, type) and issubclass(python_type, _COURSE_KEY_TYPES):
        return True
    return python_type is str and attr in _COURSE_KEY_NAMES


def _unwrap_optional(attribute: attrs.Attribute[Any]) -> tuple[Any, bool]:
    python_type, optional = optional_member(attribute.type)
    return python_type, optional or attribute.default is None


def _walk(nodes: tuple[_Node, ...]) -> Iterator[_Leaf | _List]:
    """Leaves and lists of a record, depth first, in field order (not descending into lists)."""
    for node in nodes:
        if isinstance(node, _Record):
            yield from _walk(node.nodes)
        else:
            yield node


_TREES: dict[type[Any], tuple[_Node, ...]] = {}
_MODELS: dict[tuple[type[Any], str], TableModel] = {}
_FLATTENERS: dict[tuple[type[Any], str], Flattener] = {}


def _tree(data_class: type[Any]) -> tuple[_Node, ...]:
    if (tree := _TREES.get(data_class)) is None:
        tree = _TREES[data_class] = _record_nodes(data_class, _Context(owner=data_class))
    return tree


# --- the column model -----------------------------------------------------------------------------


def envelope_column_names() -> tuple[str, ...]:
    """Names of the envelope columns, in table order."""
    return tuple(column.name for column in ENVELOPE_COLUMNS)


def table_model(data_class: type[Any], table: str) -> TableModel:
    """The column model of ``table`` storing ``data_class`` (computed once, then cached).

    Raises:
        TypeError: The class has an attribute type with no column type, or lists inside list items.
        ValueError: Names cannot be made unique within 63 characters.
    """
    if (model := _MODELS.get((data_class, table))) is None:
        model = _MODELS[data_class, table] = _build_table_model(data_class, table)
    return model


def _build_table_model(data_class: type[Any], table: str) -> TableModel:
    nodes = list(_walk(_tree(data_class)))
    leaves = [node for node in nodes if isinstance(node, _Leaf)]
    lists = [node for node in nodes if isinstance(node, _List)]
    columns = _columns(leaves, reserved=envelope_column_names())
    table_names = naming.shorten(
        [(table, *node.path) for node in lists], reserved=_catalog_tables()
    )
    children = tuple(_child_table(node, table_names[(table, *node.path)], table) for node in lists)
    return TableModel(table, data_class, columns, children)


def model_for(spec: EventSpec) -> TableModel:
    """The column model of the table of ``spec``."""
    return table_model(spec.data_class, spec.table)


def all_models() -> tuple[TableModel, ...]:
    """One model per catalog table, in catalog order."""
    models: dict[str, TableModel] = {}
    for spec in catalog.all_specs():
        models.setdefault(spec.table, model_for(spec))
    return tuple(models.values())


def _catalog_tables() -> frozenset[str]:
    return frozenset(spec.table for spec in catalog.all_specs())


def _columns(leaves: list[_Leaf], reserved: tuple[str, ...]) -> tuple[Column, ...]:
    names = naming.shorten([leaf.path for leaf in leaves], reserved=reserved)
    return tuple(_column(leaf, names[leaf.path]) for leaf in leaves)


def _column(leaf: _Leaf, name: str) -> Column:
    return Column(
        name=name,
        type=leaf.type,
        # A personal value may be dropped by the PII policy (SINK_PII=drop): it is then NULL.
        nullable=leaf.nullable or leaf.personal,
        path=leaf.path,
        personal=leaf.personal,
        user_id=leaf.user_id,
        course_key=leaf.course_key,
    )


def _child_table(node: _List, name: str, table: str) -> ChildTable:
    full = naming.full_name((table, *node.path))
    item = node.item
    if isinstance(item, _Leaf):
        value = attrs.evolve(_column(item, VALUE_COLUMN), path=())
        return ChildTable(name, full, node.path, (value,), None)
    leaves = [leaf for leaf in _walk(item.nodes) if isinstance(leaf, _Leaf)]
    columns = _columns(leaves, reserved=tuple(c.name for c in CHILD_KEY_COLUMNS))
    return ChildTable(name, full, node.path, columns, item.cls)


# --- flattening -----------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_text(text: str) -> Any:
    """The JSON document in ``text``; ``text`` itself (a JSON string) when it is not JSON."""
    try:
        return jsontext.loads(text)
    except (ValueError, RecursionError):
        return text


_HELPERS: Final[dict[str, Any]] = {
    "_utc": _utc,
    "_json_text": _json_text,
    "_key": str,
    "Flattened": Flattened,
}


def flatten(spec: EventSpec, data: Any, event_id: str) -> Flattened:
    """The rows of one payload of ``spec``'s class; child rows carry ``event_id``.

    Deterministic: equal payloads give equal results, with keys in column order. For the hot path,
    take :func:`flattener` once per spec and call it directly.
    """
    return flattener(spec.data_class, spec.table)(data, event_id)


def flattener_for(spec: EventSpec) -> Flattener:
    """The compiled flattening function of ``spec``'s table."""
    return flattener(spec.data_class, spec.table)


def flattener(data_class: type[Any], table: str) -> Flattener:
    """The flattening function of ``table`` storing ``data_class``, compiled on first use."""
    if (function := _FLATTENERS.get((data_class, table))) is None:
        function = _FLATTENERS[data_class, table] = _compile(data_class, table)
    return function


def _compile(data_class: type[Any], table: str) -> Flattener:
    namespace = dict(_HELPERS)
    code = compile(flattener_source(data_class, table), f"<flatten {table}>", "exec")
    # The source is generated from our own model: attribute names checked to be identifiers,
    # column names rendered with repr(). Nothing in it comes from event data.
    exec(code, namespace)  # noqa: S102
    function: Flattener = namespace["flatten"]
    return function


def flattener_source(data_class: type[Any], table: str) -> str:
    """The Python source of the flattening function of ``table`` (for :func:`flattener`)."""
    model = table_model(data_class, table)
    source = _Source()
    source.function(
        "flatten",
        ("r0", "event_id"),
        _nodes_body(_tree(data_class), model.columns, source, children=model.children),
    )
    return source.text()


@attrs.define
class _Body:
    """The statements and row entries of one generated function.

    ``names`` maps the attribute paths of the record to their column names.
    """

    names: dict[naming.Path, str]
    assignments: list[str] = attrs.field(factory=list)
    entries: list[str] = attrs.field(factory=list)
    lists: list[tuple[_List, str]] = attrs.field(factory=list)
    result: str = ""


@attrs.define
class _Source:
    """Generated module text, and a counter for unique local and function names."""

    functions: list[str] = attrs.field(factory=list)
    counter: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def function(self, name: str, parameters: tuple[str, ...], body: _Body) -> None:
        lines = [f"def {name}({', '.join(parameters)}):"]
        lines += [f"    {statement}" for statement in body.assignments]
        lines.append(f"    return {body.result}")
        self.functions.append("\n".join(lines))

    def text(self) -> str:
        return "\n\n\n".join(self.functions) + "\n"


def _nodes_body(
    nodes: tuple[_Node, ...],
    columns: tuple[Column, ...],
    source: _Source,
    *,
    children: tuple[ChildTable, ...] = (),
    key_entries: tuple[str, ...] = (),
) -> _Body:
    """The body of a function mapping the record ``r0`` (never None) to a row (and children)."""
    body = _Body({column.path: column.name for column in columns})
    _emit_record(nodes, "r0", source, body, maybe_none=False)
    if key_entries:
        body.result = _display((*key_entries, *body.entries), indent=1)
        return body
    row = _display(body.entries, indent=2)
    child_rows = {child.path: child for child in children}
    built = [_child_rows(node, var, child_rows[node.path], source) for node, var in body.lists]
    body.result = f"Flattened(\n        {row},\n        {_display(built, indent=2)},\n    )"
    return body


def _emit_record(
    nodes: tuple[_Node, ...], var: str, source: _Source, body: _Body, *, maybe_none: bool
) -> None:
    """Add the entries of a record held in local ``var`` (which may be None) to ``body``."""
    for node in nodes:
        if isinstance(node, _Record):
            local = source.fresh("r")
            body.assignments.append(f"{local} = {_guard(var, maybe_none, f'{var}.{node.attr}')}")
            _emit_record(node.nodes, local, source, body, maybe_none=maybe_none or node.optional)
        elif isinstance(node, _Leaf):
            value = _guard(var, maybe_none, _converted(f"{var}.{node.attr}", node))
            body.entries.append(f"{body.names[node.path]!r}: {value}")
        else:
            iterable = f"{var}.{node.attr}"
            if node.optional:
                iterable = f"({iterable} or ())"
            body.lists.append(
                (node, f"(() if {var} is None else {iterable})" if maybe_none else iterable)
            )


def _child_rows(node: _List, iterable: str, child: ChildTable, source: _Source) -> str:
    """``'child': [rows…]`` for the list ``node``, iterating over ``iterable``."""
    keys = ("'event_id': event_id", "'position': position")
    if isinstance(node.item, _Leaf):
        value = _converted("item", node.item)
        row = "{" + ", ".join((*keys, f"{VALUE_COLUMN!r}: {value}")) + "}"
    else:
        function = source.fresh("_item")
        item_body = _nodes_body(node.item.nodes, child.columns, source, key_entries=keys)
        source.function(function, ("r0", "position", "event_id"), item_body)
        row = f"{function}(item, position, event_id)"
    return f"{child.name!r}: [{row} for position, item in enumerate({iterable})]"


def _display(entries: tuple[str, ...] | list[str], indent: int) -> str:
    """A dict display of ``entries``, one per line, indented ``indent`` levels."""
    if not entries:
        return "{}"
    inner = "    " * (indent + 1)
    lines = "".join(f"{inner}{entry},\n" for entry in entries)
    return f"{{\n{lines}{'    ' * indent}}}"


def _guard(var: str, maybe_none: bool, expression: str) -> str:
    """``expression``, or None when the record in ``var`` may be None and is."""
    return f"None if {var} is None else {expression}" if maybe_none else expression


def _converted(expression: str, leaf: _Leaf) -> str:
    """``expression`` passed through the leaf's converter (None stays None when optional)."""
    helper = leaf.convert.value
    if helper is None:
        return expression
    if not leaf.optional:
        return f"{helper}({expression})"
    if expression.isidentifier():
        return f"None if {expression} is None else {helper}({expression})"
    return f"None if (v := {expression}) is None else {helper}(v)"
