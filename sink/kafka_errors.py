"""Which Kafka client errors mean the settings are wrong, rather than that the broker is away.

librdkafka retries every failure by itself, a refused login included: without this distinction a
sink with a wrong password would retry silently forever. Refusals become a
:class:`~sink.errors.ConfigError` that names the ``SINK_KAFKA_*`` settings; anything else is an
outage librdkafka recovers from.
"""

from __future__ import annotations

from typing import Final

from confluent_kafka import KafkaError

from sink.errors import ConfigError

#: Kafka error codes that mean the settings are wrong rather than that the broker is down.
REFUSALS: Final = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError._SSL,
        KafkaError._INVALID_ARG,
    }
)


def raise_if_refused(error: KafkaError) -> None:
    """Raise when Kafka refused the client's settings (credentials, authorization, options).

    Raises:
        ConfigError: The error is a refusal, or fatal to the client; the message names the
            ``SINK_KAFKA_*`` settings.
    """
    if error.code() in REFUSALS or error.fatal():
        raise ConfigError(f"Kafka refused the sink: {error.str()}; check the SINK_KAFKA_* settings")
