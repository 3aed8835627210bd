"""Decoding Kafka messages from the Open edX event bus into typed events.

A message value is Confluent-framed Avro: byte ``0x00``, a 4-byte big-endian schema id, then the
schemaless Avro record. The event type comes from the ``ce_type`` header (see
:mod:`sink.headers`); the writer schema from the Schema Registry by id, or — when no registry is
configured — from the sink's own derivation of the schema for that event type.

Each (schema id, event type) pair gets a :class:`_Plan` once: the parsed writer schema, the
parsed reader schema when the two differ (schema resolution is about three times slower, so it is
skipped when the writer's Parsing Canonical Form equals the reader's), and the record-to-attrs
converter of :mod:`sink.structure`.

Every problem with a message raises a :class:`~sink.errors.DecodeError` subclass naming the
message's :class:`~sink.errors.MessageLocation`; a registry that cannot be reached raises the
transient :class:`~sink.errors.RegistryUnavailableError` instead, so the message is retried rather
than dead-lettered.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from sink.avro_schema import canonical_schema, reader_schema
from sink.catalog import EventSpec, spec_for
from sink.config import Settings, env_name
from sink.errors import (
    ConfigError,
    CorruptPayloadError,
    DecodeError,
    FramingError,
    MessageLocation,
    RegistryAccessError,
    RegistryUnavailableError,
    SchemaMismatchError,
    UnknownSchemaIdError,
)
from sink.headers import EventMetadata, Headers, parse_headers
from sink.structure import structurer

log = logging.getLogger(__name__)

MAGIC_BYTE: Final = 0
FRAME_SIZE: Final = 5
_ANY_SCHEMA_ID: Final = -1
#: Registry error codes of "no schema with this id": Confluent's and Apicurio's 40403, and the
#: 40400 of confluent-kafka's ``mock://`` client. A 404 without them means a wrong URL.
SCHEMA_NOT_FOUND_CODES: Final = frozenset({40403, 40400})
NO_REGISTRY_WARNING: Final = (
    "no schema registry configured: decoding with local schemas (the sink's own schema for each"
    " event type is assumed to be the writer schema; messages written with another schema will"
    " fail to decode or decode wrongly)"
)

#: A parsed fastavro schema.
ParsedSchema = Any


def registry_client(
    url: str, *, basic_auth_user_info: str | None = None, timeout_s: float = 10.0
) -> Any:
    """A ``SchemaRegistryClient`` for ``url`` (``mock://...`` gives an in-memory one, for tests).

    Args:
        url: Base URL of a Confluent-compatible registry, e.g.
            ``http://127.0.0.1:18081/apis/ccompat/v7``.
        basic_auth_user_info: ``user:password`` for HTTP basic authentication, if required.
        timeout_s: Timeout of each registry request, in seconds.

    Raises:
        ConfigError: The client rejects the settings (bad URL, malformed user info).
    """
    config: dict[str, Any] = {"url": url, "timeout": timeout_s}
    if basic_auth_user_info is not None:
        config["basic.auth.user.info"] = basic_auth_user_info
    try:
        return SchemaRegistryClient.new_client(config)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"schema registry settings: {error}") from None


def registry_client_for(settings: Settings) -> Any:
    """The registry client of the settings (URL, credentials, timeout); it needs a URL.

    Raises:
        ConfigError: No registry URL is set, or the client rejects the settings.
    """
    if not settings.schema_registry_url:
        raise ConfigError(f"no schema registry: set {env_name('schema_registry_url')}")
    auth = settings.schema_registry_basic_auth
    return registry_client(
        settings.schema_registry_url,
        basic_auth_user_info=None if auth is None else auth.value,
        timeout_s=settings.schema_registry_timeout_s,
    )


class SchemaSource(Protocol):
    """What the decoder needs of a Schema Registry client (``SchemaRegistryClient`` fits)."""

    def get_schema(self, schema_id: int) -> Any:
        """The registered schema with this id (an object with ``schema_str``, ``schema_type``)."""


def _size(raw: bytes | None) -> str:
    """How a raw key or value shows in ``repr``: its size only (it may hold personal data)."""
    return "None" if raw is None else f"<{len(raw)} bytes>"


@attrs.frozen
class RawMessage:
    """The message an event was decoded from, as Kafka gave it (references, not copies).

    Kept so that an event whose rows the database rejects can be dead-lettered whole, and
    replayed later (``sink dlq replay``). ``repr`` shows sizes only: values hold personal data.

    Attributes:
        key: Raw message key, if any.
        value: Raw message value.
        headers: Message headers as given (``None`` when there are none).
    """

    key: bytes | None = attrs.field(repr=_size)
    value: bytes | None = attrs.field(repr=_size)
    headers: Headers = attrs.field(repr=False)

    def header_pairs(self) -> tuple[tuple[str, bytes | None], ...]:
        """The headers as a tuple of (name, raw value) pairs."""
        return tuple(self.headers or ())


@attrs.frozen
class DecodedEvent:
    """One event read from Kafka.

    Attributes:
        metadata: CloudEvents attributes from the message headers.
        schema_id: Registry id of the writer schema, from the message framing.
        spec: What the sink knows about the event type.
        data: The payload: an instance of ``spec.data_class``.
        location: Topic, partition and offset of the message.
        raw: The message it was decoded from (None for events built otherwise, e.g. in tests);
            not part of equality, and never shown by ``repr`` (it holds personal data).
    """

    metadata: EventMetadata
    schema_id: int
    spec: EventSpec
    data: Any
    location: MessageLocation
    raw: RawMessage | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def event_id(self) -> str:
        """The ``ce_id`` header: the event's idempotency key."""
        return self.metadata.id

    @property
    def event_type(self) -> str:
        """The ``ce_type`` header."""
        return self.metadata.type


@attrs.frozen
class _Plan:
    """How to decode the messages of one (schema id, event type) pair."""

    spec: EventSpec
    writer: ParsedSchema
    reader: ParsedSchema | None
    structure: Callable[[dict[str, Any]], Any]

    def decode(self, value: bytes) -> Any:
        """The payload instance of a framed message value."""
        buffer = io.BytesIO(value)
        buffer.seek(FRAME_SIZE)
        record = _read_record(buffer, self.writer, self.reader)
        if (trailing := len(value) - buffer.tell()) > 0:
            raise CorruptPayloadError(f"{trailing} trailing bytes after the Avro record")
        try:
            payload = record[self.spec.data_key]
        except (KeyError, TypeError):
            key = self.spec.data_key
            raise SchemaMismatchError(f"decoded record has no field {key!r}") from None
        return self.structure(payload)


def _read_record(buffer: io.BytesIO, writer: ParsedSchema, reader: ParsedSchema | None) -> Any:
    try:
        return fastavro.schemaless_reader(buffer, writer, reader)
    except SchemaResolutionError as error:
        raise SchemaMismatchError(f"writer schema does not resolve: {error}") from error
    except Exception as error:  # any failure of the Avro reader means bad bytes
        reason = f"corrupt Avro payload: {type(error).__name__}: {error}"
        raise CorruptPayloadError(reason) from error


class Decoder:
    """Decodes Open edX event-bus messages into :class:`DecodedEvent` instances.

    Args:
        registry: Schema Registry client to fetch writer schemas by id; ``None`` decodes every
            message with the sink's local schema for its event type (and logs a warning once).
    """

    def __init__(self, registry: SchemaSource | None = None) -> None:
        self._registry = registry
        self._plans: dict[tuple[int, str], _Plan] = {}
        if registry is None:
            log.warning(NO_REGISTRY_WARNING)

    @classmethod
    def from_settings(cls, settings: Settings) -> Decoder:
        """A decoder using the settings' schema registry (local schemas without one)."""
        if not settings.schema_registry_url:
            return cls()
        return cls(registry_client_for(settings))

    def decode(
        self,
        value: bytes | None,
        headers: Headers,
        location: MessageLocation,
        key: bytes | None = None,
    ) -> DecodedEvent:
        """Decode one message; the event keeps ``key``, ``value`` and ``headers`` as its ``raw``.

        Raises:
            DecodeError: The message is bad (a poison message); the error names ``location``.
            RegistryUnavailableError: The registry could not be asked; retry later.
            RegistryAccessError: The registry refused the sink's credentials.
        """
        try:
            metadata = parse_headers(headers)
            if value is None or len(value) < FRAME_SIZE or value[0] != MAGIC_BYTE:
                raise _framing_error(value)
            schema_id = int.from_bytes(value[1:FRAME_SIZE], "big")
            # Without registry every id is read the same way: one plan per event type.
            plan_id = _ANY_SCHEMA_ID if self._registry is None else schema_id
            plan = self._plans.get((plan_id, metadata.type))
            if plan is None:
                plan = self._plan(plan_id, spec_for(metadata.type), location)
            data = plan.decode(value)
        except DecodeError as error:
            raise error.at(location) from error.__cause__
        raw = RawMessage(key, value, headers)
        return DecodedEvent(metadata, schema_id, plan.spec, data, location, raw)

    def decode_message(self, message: Any) -> DecodedEvent:
        """Decode a ``confluent_kafka.Message``."""
        location = MessageLocation(message.topic(), message.partition(), message.offset())
        return self.decode(message.value(), message.headers(), location, message.key())

    def _plan(self, schema_id: int, spec: EventSpec, location: MessageLocation) -> _Plan:
        if self._registry is None:
            writer = _parsed(canonical_schema(spec))
        else:
            writer = _registry_writer(self._registry, schema_id, location)
        plan = _make_plan(writer, spec)
        self._plans[(schema_id, spec.event_type)] = plan
        return plan


def _framing_error(value: bytes | None) -> FramingError:
    """What is wrong with a value that is not Confluent-framed."""
    if value is None:
        return FramingError("message has no value (a tombstone?)")
    if len(value) < FRAME_SIZE:
        return FramingError(f"value of {len(value)} bytes is too short for Confluent framing")
    return FramingError(
        f"magic byte is 0x{value[0]:02x}, not 0x00: not Confluent-framed Avro with a schema id"
    )


def _make_plan(writer: ParsedSchema, spec: EventSpec) -> _Plan:
    reader = _parsed(reader_schema(spec))
    if _canonical_form(writer) == _canonical_form(reader):
        reader = None  # identical for reading: skip schema resolution
    return _Plan(spec, writer, reader, structurer(spec.data_class, spec.data_key))


def _canonical_form(parsed: ParsedSchema) -> str:
    return str(to_parsing_canonical_form(parsed))


@functools.cache
def _parsed_json(schema_json: str) -> ParsedSchema:
    return fastavro.parse_schema(json.loads(schema_json))


def _parsed(schema: dict[str, Any]) -> ParsedSchema:
    """``schema`` parsed by fastavro (cached by content; the argument is not modified)."""
    return _parsed_json(json.dumps(schema, sort_keys=True))


def _registry_writer(registry: SchemaSource, schema_id: int, location: MessageLocation) -> Any:
    """The parsed writer schema registered under ``schema_id``."""
    registered = _fetch(registry, schema_id, location)
    schema_type = getattr(registered, "schema_type", None) or "AVRO"
    if schema_type != "AVRO":
        raise SchemaMismatchError(f"schema {schema_id} is a {schema_type} schema, not Avro")
    try:
        return _parsed_json(registered.schema_str)
    except Exception as error:  # json or fastavro rejecting the registered text
        reason = f"schema {schema_id} is not a usable Avro schema: {type(error).__name__}: {error}"
        raise SchemaMismatchError(reason) from error


def _fetch(registry: SchemaSource, schema_id: int, location: MessageLocation) -> Any:
    """Ask the registry for a schema, sorting its failures into the sink's errors."""
    try:
        return registry.get_schema(schema_id)
    except Exception as error:  # classified below; unknown failures are transient
        status = getattr(error, "http_status_code", None)
        if status == 404 and getattr(error, "error_code", None) in SCHEMA_NOT_FOUND_CODES:
            raise UnknownSchemaIdError(f"schema registry has no schema {schema_id}") from error
        if status == 404:
            reason = f"schema registry URL answers 404 with no schema-not-found code: {error}"
            raise RegistryAccessError(reason) from error
        if status in (401, 403):
            reason = f"schema registry refused access (HTTP {status}): {error}"
            raise RegistryAccessError(reason) from error
        reason = f"{location}: schema registry unavailable fetching schema {schema_id}: {error}"
        raise RegistryUnavailableError(reason) from error
