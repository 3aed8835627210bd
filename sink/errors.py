"""The sink's exception hierarchy: one root, and one question answered by each class.

Every error the sink raises on purpose derives from :class:`SinkError`. Handling code asks two
questions of an error, answered by class attributes rather than by ``isinstance`` lists:

* ``transient`` — is it worth retrying the same work later (a registry or database that is down)?
* ``poison`` — is the message itself bad, so that it belongs in the dead-letter table and the
  stream must move on?

An error that is neither is fatal: the process exits with its message.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.frozen
class MessageLocation:
    """Where a Kafka message came from, for error messages and dead letters.

    Attributes:
        topic: Kafka topic name.
        partition: Partition number.
        offset: Offset of the message within the partition.
    """

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class SinkError(Exception):
    """Root of every error the sink raises on purpose."""

    transient: ClassVar[bool] = False
    poison: ClassVar[bool] = False


class ConfigError(SinkError):
    """A setting is missing or invalid; the message names the setting."""


class ServiceUnavailableError(SinkError):
    """A service the sink depends on (registry, database, broker) cannot be reached right now."""

    transient = True


class RegistryUnavailableError(ServiceUnavailableError):
    """The Schema Registry did not answer; retrying later may succeed."""


class DecodeError(SinkError):
    """A Kafka message cannot be turned into an event: the message itself is bad.

    The message text says what is wrong; ``location`` (when known) says which message it was.
    """

    poison = True

    def __init__(self, reason: str, location: MessageLocation | None = None) -> None:
        self.reason = reason
        self.location = location
        super().__init__(reason if location is None else f"{location}: {reason}")

    def at(self, location: MessageLocation) -> DecodeError:
        """Return a copy of this error that names the message it concerns."""
        located = type(self).__new__(type(self))
        DecodeError.__init__(located, self.reason, location)
        located.__cause__ = self.__cause__
        return located


class MissingHeaderError(DecodeError):
    """A required CloudEvents header (``ce_id``, ``ce_type``) is absent."""


class DuplicateHeaderError(DecodeError):
    """A header that must appear once appears several times."""


class BadHeaderError(DecodeError):
    """A header is present but its value cannot be used (not UTF-8, not a time, ...)."""


class UnknownEventTypeError(DecodeError):
    """The ``ce_type`` names an event type this sink does not know."""


class FramingError(DecodeError):
    """The value is not Confluent-framed Avro (wrong magic byte, too short)."""


class UnknownSchemaIdError(DecodeError):
    """The Schema Registry has no schema under the id in the message."""


class SchemaMismatchError(DecodeError):
    """The writer schema cannot be read as this sink's schema for the event type."""


class CorruptPayloadError(DecodeError):
    """The Avro bytes are truncated or corrupt."""


class InvalidValueError(DecodeError):
    """A decoded value does not fit its field (opaque key, UUID, datetime, type)."""


class RegistryAccessError(ConfigError):
    """The Schema Registry refuses the sink's requests: its settings need fixing.

    Either the credentials are wrong (HTTP 401/403) or the URL is not a registry API (HTTP 404
    without the schema-not-found error code).
    """


class DatabaseUnavailableError(ServiceUnavailableError):
    """The warehouse database cannot be reached, or aborted the transaction for reasons of its own.

    Connection refused or lost, server shutting down, deadlock, serialization failure: the
    transaction was rolled back, and writing the same batch again later may succeed.
    """


class DatabaseAccessError(ConfigError):
    """The warehouse database refuses the sink's login, database or role: its URL needs fixing.

    A wrong password, an unknown role or database, a host not allowed by ``pg_hba.conf``, a
    permission denied, a read-only SQLite file.
    """


class SchemaOutOfDateError(ConfigError):
    """The database schema is not at the revision this sink needs: run ``sink migrate``."""


class UnstorableValueError(SinkError):
    """A value of the event cannot be stored by the warehouse database (e.g. a NUL character).

    Raised by the writer's own checks before the database would refuse the row; the event is
    dead-lettered like a row the database rejected.
    """

    poison = True


class WarehouseError(SinkError):
    """The warehouse database failed for a reason retrying will not fix; the message says which."""


class ReportError(SinkError):
    """A report cannot be given as asked: an unknown name, or a filter it has no column for.

    The message names the report and the option (``--course``, ``--since``).
    """
