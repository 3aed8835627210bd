"""The benchmark's workload: a realistic mix of Open edX events, and producing it fast.

A pool of a few thousand payloads is built once with the openedx-events classes and serialized by
openedx-events itself (:mod:`tests.producer`), then re-sent as often as needed, each time with a
fresh ``ce_id`` (what the sink's idempotency is keyed on) and ``ce_time``: generating payloads
never dominates the producing.

The mix is what an LMS sends, by share of events: mostly tracking logs, then enrollments, grades
and logins, some certificates, registrations and passing statuses, and a few enterprise events.
They go to three topics as an Open edX deployment splits them (tracking logs; learning events
keyed by course; account and enterprise events keyed by user).
"""

from __future__ import annotations

import functools
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from opaque_keys.edx.keys import CourseKey
from openedx_events.analytics.data import TrackingLogData
from openedx_events.enterprise.data import LedgerTransaction, SubsidyRedemption
from openedx_events.learning.data import (
    CertificateData,
    CourseData,
    CourseEnrollmentData,
    CoursePassingStatusData,
    PersistentCourseGradeData,
    UserData,
    UserPersonalData,
)

from sink import catalog
from tests import producer

PREFIX: Final = "org.openedx"
TRACKING: Final = f"{PREFIX}.analytics.tracking.event.emitted.v1"
ENROLLMENT_CREATED: Final = f"{PREFIX}.learning.course.enrollment.created.v1"
ENROLLMENT_CHANGED: Final = f"{PREFIX}.learning.course.enrollment.changed.v1"
UNENROLLMENT: Final = f"{PREFIX}.learning.course.unenrollment.completed.v1"
GRADE: Final = f"{PREFIX}.learning.course.persistent_grade_summary.changed.v1"
CERTIFICATE_CREATED: Final = f"{PREFIX}.learning.certificate.created.v1"
CERTIFICATE_CHANGED: Final = f"{PREFIX}.learning.certificate.changed.v1"
PASSING_STATUS: Final = f"{PREFIX}.learning.course.passing.status.updated.v1"
LOGIN: Final = f"{PREFIX}.learning.auth.session.login.completed.v1"
REGISTRATION: Final = f"{PREFIX}.learning.student.registration.completed.v1"
SUBSIDY_REDEEMED: Final = f"{PREFIX}.enterprise.subsidy.redeemed.v1"
LEDGER_CREATED: Final = f"{PREFIX}.enterprise.subsidy_ledger_transaction.created.v1"
LEDGER_COMMITTED: Final = f"{PREFIX}.enterprise.subsidy_ledger_transaction.committed.v1"

#: Topic roles: the benchmark's topics are ``<run prefix>-<role>``.
TOPIC_ROLES: Final = ("tracking", "learning", "users")

#: (topic role, event type, share of events in percent).
MIX: Final[tuple[tuple[str, str, float], ...]] = (
    ("tracking", TRACKING, 61.0),
    ("learning", ENROLLMENT_CREATED, 12.0),
    ("learning", ENROLLMENT_CHANGED, 4.0),
    ("learning", UNENROLLMENT, 2.0),
    ("learning", GRADE, 8.0),
    ("learning", CERTIFICATE_CREATED, 1.5),
    ("learning", CERTIFICATE_CHANGED, 0.5),
    ("learning", PASSING_STATUS, 1.5),
    ("users", LOGIN, 7.0),
    ("users", REGISTRATION, 1.5),
    ("users", SUBSIDY_REDEEMED, 0.5),
    ("users", LEDGER_CREATED, 0.3),
    ("users", LEDGER_COMMITTED, 0.2),
)

HOST: Final = "courses.example.org"
AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 edX/org.edx.mobile/5.1.0",
)
FIRST_NAMES: Final = ("Ana", "Bo", "Chidi", "Dana", "Eitan", "Fatima", "Goran", "Hana", "Ivo")
LAST_NAMES: Final = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad")


@attrs.frozen
class Payload:
    """One pre-serialized event: re-sent many times with fresh headers.

    Attributes:
        role: Topic role (see :data:`TOPIC_ROLES`).
        event_type: The ``ce_type``.
        avro: The schemaless Avro bytes openedx-events made of the payload.
        key: The message key (course key or user id), before Avro framing.
    """

    role: str
    event_type: str
    avro: bytes
    key: str


class _World:
    """Learners and courses the random payloads refer to."""

    def __init__(self, rng: random.Random, users: int = 20_000, courses: int = 120) -> None:
        self.rng = rng
        self.users = users
        self.courses = [
            f"course-v1:Org{index % 9}+CS{100 + index}+{2024 + index % 3}T{1 + index % 3}"
            for index in range(courses)
        ]
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def user_id(self) -> int:
        return self.rng.randrange(1, self.users)

    def user(self, user_id: int | None = None) -> UserData:
        user_id = self.user_id() if user_id is None else user_id
        first, last = FIRST_NAMES[user_id % 9], LAST_NAMES[user_id % 7]
        pii = UserPersonalData(
            username=f"{first.lower()}_{last.lower()}{user_id}",
            email=f"{first.lower()}.{last.lower()}{user_id}@example.org",
            name=f"{first} {last}",
        )
        return UserData(id=user_id, is_active=self.rng.random() < 0.97, pii=pii)

    def course_key(self) -> str:
        return self.rng.choice(self.courses)

    def course(self, key: str | None = None) -> CourseData:
        key = self.course_key() if key is None else key
        start = datetime(2026, 1, 5 + len(key) % 20, tzinfo=UTC)
        return CourseData(
            course_key=CourseKey.from_string(key),
            display_name=f"Introduction to {key.split('+')[1]}",
            start=start,
            end=start + timedelta(days=98),
        )

    def moment(self) -> datetime:
        return self.now - timedelta(seconds=self.rng.randrange(30 * 86_400), microseconds=1)

    def block(self, course_key: str, block_type: str) -> str:
        run = course_key.removeprefix("course-v1:")
        return f"block-v1:{run}+type@{block_type}+block@{self.rng.getrandbits(128):032x}"


def _enrollment(world: _World) -> tuple[Any, str]:
    user = world.user()
    data = CourseEnrollmentData(
        user=user,
        course=world.course(),
        mode=world.rng.choice(("audit", "audit", "verified", "honor")),
        is_active=world.rng.random() < 0.9,
        creation_date=world.moment(),
        created_by=None if world.rng.random() < 0.95 else world.user(),
    )
    return data, str(data.course.course_key)


def _grade(world: _World) -> tuple[Any, str]:
    course = world.course()
    percent = round(world.rng.random(), 2)
    data = PersistentCourseGradeData(
        user_id=world.user_id(),
        course=course,
        course_edited_timestamp=world.moment(),
        course_version=f"{world.rng.getrandbits(96):024x}",
        grading_policy_hash=f"{world.rng.getrandbits(160):040x}"[:28],
        percent_grade=percent,
        letter_grade="Pass" if percent >= 0.5 else "",
        passed_timestamp=world.moment(),
    )
    return data, str(course.course_key)


def _certificate(world: _World) -> tuple[Any, str]:
    user, course = world.user(), world.course()
    data = CertificateData(
        user=user,
        course=course,
        mode=world.rng.choice(("verified", "honor", "professional")),
        grade=f"{0.5 + world.rng.random() / 2:.2f}",
        download_url=f"https://{HOST}/certificates/{uuid.UUID(int=world.rng.getrandbits(128)).hex}",
        name=user.pii.name,
        current_status="downloadable",
        previous_status=world.rng.choice(("notpassing", "unavailable", "")),
    )
    return data, str(course.course_key)


def _passing_status(world: _World) -> tuple[Any, str]:
    course = world.course()
    data = CoursePassingStatusData(
        is_passing=world.rng.random() < 0.6, course=course, user=world.user()
    )
    return data, str(course.course_key)


def _user(world: _World) -> tuple[Any, str]:
    user = world.user()
    return user, str(user.id)


def _redemption(world: _World) -> tuple[Any, str]:
    user_id = world.user_id()
    data = SubsidyRedemption(
        subsidy_identifier=str(uuid.UUID(int=world.rng.getrandbits(128))),
        content_key=world.course_key(),
        lms_user_id=user_id,
    )
    return data, str(user_id)


def _ledger(world: _World) -> tuple[Any, str]:
    user_id, created = world.user_id(), world.moment()
    course = world.course_key()
    data = LedgerTransaction(
        uuid=uuid.UUID(int=world.rng.getrandbits(128)),
        created=created,
        modified=created + timedelta(seconds=2),
        idempotency_key=f"ledger-{world.rng.getrandbits(64):016x}",
        quantity=-world.rng.choice((4900, 9900, 19900, 29900)),
        state="committed",
        ledger_uuid=uuid.UUID(int=world.rng.getrandbits(128)),
        subsidy_access_policy_uuid=uuid.UUID(int=world.rng.getrandbits(128)),
        lms_user_id=user_id,
        content_key=CourseKey.from_string(course),
        parent_content_key=course.removeprefix("course-v1:").rsplit("+", 1)[0],
        fulfillment_identifier=str(world.rng.getrandbits(32)),
        reversal=None,
    )
    return data, str(user_id)


CORRECT_MAP: Final = {"npoints": None, "msg": "", "hint": "", "hintmode": None, "queuestate": None}
SUBMISSION: Final = {
    "question": "Which of these is a prime number?",
    "answer": "7",
    "response_type": "multiplechoiceresponse",
    "input_type": "choicegroup",
    "variant": "",
    "group_label": "",
}


def _tracking_data(world: _World, name: str, course_key: str, user_id: int) -> dict[str, Any]:
    rng = world.rng
    if name in ("play_video", "pause_video", "seek_video"):
        duration = float(rng.randrange(120, 1200))
        return {
            "id": f"{rng.getrandbits(128):032x}",
            "code": rng.choice(("html5", "hls", "mobile")),
            "currentTime": round(rng.random() * duration, 3),
            "duration": duration,
        }
    if name == "problem_check":
        problem = world.block(course_key, "problem")
        answer = f"{problem.rsplit('@', 1)[1]}_2_1"
        correct = rng.random() < 0.7
        outcome = "correct" if correct else "incorrect"
        return {
            "problem_id": problem,
            "answers": {answer: f"choice_{rng.randrange(4)}"},
            "grade": int(correct),
            "max_grade": 1,
            "success": outcome,
            "attempts": rng.randrange(1, 4),
            "correct_map": {answer: {**CORRECT_MAP, "correctness": outcome}},
            "state": {"seed": 1, "done": True, "student_answers": {}},
            "submission": {answer: {**SUBMISSION, "correct": correct}},
        }
    if name == "edx.ui.lms.sequence.next_selected":
        tabs = rng.randrange(3, 12)
        return {
            "current_tab": rng.randrange(1, tabs),
            "tab_count": tabs,
            "id": world.block(course_key, "sequential"),
            "widget_placement": rng.choice(("top", "bottom")),
        }
    if name == "edx.course.enrollment.activated":
        return {"course_id": course_key, "user_id": user_id, "mode": "audit"}
    return {"GET": {}, "POST": {}}


TRACKING_NAMES: Final = (
    ("play_video", 30),
    ("pause_video", 15),
    ("seek_video", 5),
    ("problem_check", 20),
    ("edx.ui.lms.sequence.next_selected", 15),
    ("edx.course.enrollment.activated", 3),
    ("page_view", 12),
)


def _tracking(world: _World) -> tuple[Any, str]:
    rng = world.rng
    user = world.user()
    course_key = world.course_key()
    names, weights = zip(*TRACKING_NAMES, strict=True)
    name = rng.choices(names, weights)[0]
    path = f"/courses/{course_key}/courseware/{rng.getrandbits(64):016x}/"
    if name == "page_view":
        name = path
    browser = name in ("play_video", "pause_video", "seek_video") or name.startswith("edx.ui.")
    context = {
        "course_id": course_key,
        "org_id": course_key.split(":")[1].split("+")[0],
        "path": "/event" if browser else path,
        "user_id": user.id,
        "username": user.pii.username,
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "agent": rng.choice(AGENTS),
        "host": HOST,
        "session": f"{rng.getrandbits(128):032x}",
        "referer": f"https://{HOST}{path}",
        "accept_language": rng.choice(("en-US,en;q=0.9", "es-419,es;q=0.9", "fr-FR,fr;q=0.8")),
        "client_id": f"{rng.getrandbits(32)}.{rng.getrandbits(32)}",
        "event_source": "browser" if browser else "server",
        "page": f"https://{HOST}{path}",
        "enterprise_uuid": "",
    }
    if name == "problem_check":
        context["module"] = {
            "display_name": f"Checkpoint {rng.randrange(1, 20)}",
            "usage_key": world.block(course_key, "problem"),
        }
    data = TrackingLogData(
        name=name,
        timestamp=world.moment(),
        data=json.dumps(_tracking_data(world, name, course_key, user.id)),
        context=json.dumps(context),
    )
    return data, str(user.id)


BUILDERS: Final[dict[str, Callable[[_World], tuple[Any, str]]]] = {
    TRACKING: _tracking,
    ENROLLMENT_CREATED: _enrollment,
    ENROLLMENT_CHANGED: _enrollment,
    UNENROLLMENT: _enrollment,
    GRADE: _grade,
    CERTIFICATE_CREATED: _certificate,
    CERTIFICATE_CHANGED: _certificate,
    PASSING_STATUS: _passing_status,
    LOGIN: _user,
    REGISTRATION: _user,
    SUBSIDY_REDEEMED: _redemption,
    LEDGER_CREATED: _ledger,
    LEDGER_COMMITTED: _ledger,
}


def payload_pool(size: int, seed: int = 7) -> list[Payload]:
    """``size`` payloads drawn from :data:`MIX` (every event type at least once), shuffled."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    world = _World(rng)
    total = sum(share for _, _, share in MIX)
    pool: list[Payload] = []
    for role, event_type, share in MIX:
        for _ in range(max(1, round(size * share / total))):
            data, key = BUILDERS[event_type](world)
            pool.append(Payload(role, event_type, producer.payload(event_type, data), key))
    rng.shuffle(pool)
    return pool


def tables_of_mix() -> tuple[str, ...]:
    """The parent tables the mix writes to."""
    return tuple(sorted({catalog.spec_for(event_type).table for _, event_type, _ in MIX}))


# --- topics and schemas --------------------------------------------------------------------------


def create_topics(admin: AdminClient, topics: Sequence[str], partitions: int) -> None:
    """Create ``topics`` with ``partitions`` partitions each (replication 1: one local broker)."""
    futures = admin.create_topics(
        [NewTopic(topic, partitions, 1) for topic in topics], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(admin: AdminClient, topics: Sequence[str]) -> None:
    """Delete ``topics`` (waiting for the broker to confirm)."""
    for future in admin.delete_topics(list(topics), operation_timeout=30).values():
        future.result(timeout=30)


def _avro_string(text: str) -> bytes:
    """Avro's encoding of a string: zig-zag varint length, then UTF-8."""
    encoded = text.encode()
    zigzag, out = len(encoded) << 1, bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out) + encoded


@attrs.frozen
class Outgoing:
    """A pool payload framed for its topic: what one ``produce`` call sends (but the headers)."""

    topic: str
    event_type: str
    value: bytes
    key: bytes


class Registrations:
    """Registers the workload's schemas on the real registry, the way the producer does."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self.registry = registry
        self.subjects: list[str] = []

    def frame(self, pool: Sequence[Payload], topics: dict[str, str]) -> list[Outgoing]:
        """Each payload framed with the schema id of its (topic, event type), key Avro-framed."""
        ids: dict[tuple[str, str], int] = {}
        key_ids: dict[str, int] = {}
        outgoing = []
        for payload in pool:
            topic = topics[payload.role]
            if (topic, payload.event_type) not in ids:
                ids[topic, payload.event_type] = producer.register(
                    self.registry, topic, payload.event_type
                )
                self.subjects.append(producer.subject(topic, payload.event_type))
            if topic not in key_ids:
                # Apicurio cannot type a bare '"string"'; the object form is equivalent.
                key_schema = Schema('{"type": "string"}', "AVRO")
                key_ids[topic] = self.registry.register_schema(f"{topic}-key", key_schema)
                self.subjects.append(f"{topic}-key")
            value = producer.frame(ids[topic, payload.event_type], payload.avro)
            key = producer.frame(key_ids[topic], _avro_string(payload.key))
            outgoing.append(Outgoing(topic, payload.event_type, value, key))
        return outgoing

    def delete(self) -> None:
        """Delete the registered subjects (best effort: the registry may refuse)."""
        for subject in self.subjects:
            try:
                self.registry.delete_subject(subject)
                self.registry.delete_subject(subject, permanent=True)
            except Exception:  # noqa: BLE001, S112 - cleanup only
                continue


# --- producing -----------------------------------------------------------------------------------

#: Header positions in :func:`tests.producer.headers`: the two that change per message.
_CE_ID, _CE_TIME = 0, 4


def _header_templates(outgoing: Sequence[Outgoing], source: str) -> dict[str, list[Any]]:
    templates = {}
    for event_type in {message.event_type for message in outgoing}:
        headers = producer.headers(event_type, source=source)
        if headers[_CE_ID][0] != "ce_id" or headers[_CE_TIME][0] != "ce_time":
            raise RuntimeError("tests.producer.headers changed its header order")
        templates[event_type] = headers
    return templates


class Sender:
    """Produces pool messages with fresh ``ce_id`` and ``ce_time`` headers.

    Args:
        bootstrap_servers: Kafka.
        outgoing: The framed pool, sent round-robin.
        source: The ``ce_source`` header (tells bulk events from latency probes in the tables).
        options: librdkafka producer options on top of the defaults.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        outgoing: Sequence[Outgoing],
        source: str,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.outgoing = outgoing
        self.templates = _header_templates(outgoing, source)
        self.errors: list[str] = []
        self.producer = Producer({"bootstrap.servers": bootstrap_servers, **(options or {})})
        self.sent = 0

    def send(self, time_text: bytes, on_delivery: Callable[..., None] | None = None) -> None:
        """Produce the next pool message, stamped ``time_text`` (ISO 8601, as bytes)."""
        message = self.outgoing[self.sent % len(self.outgoing)]
        headers = list(self.templates[message.event_type])
        headers[_CE_ID] = ("ce_id", str(uuid.uuid1()).encode())
        headers[_CE_TIME] = ("ce_time", time_text)
        while True:
            try:
                self.producer.produce(
                    message.topic,
                    message.value,
                    message.key,
                    headers=headers,
                    on_delivery=on_delivery or self._failed,
                )
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                self.producer.poll(0.05)
        self.sent += 1

    def _failed(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))

    def flush(self, timeout: float = 120.0) -> None:
        """Wait for every message; raise if one was not delivered."""
        if remaining := self.producer.flush(timeout):
            raise RuntimeError(f"{remaining} messages not delivered after {timeout} s")
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} messages failed: {self.errors[0]}")


#: Bulk producing: big batches, long linger, only errors reported back.
BULK_OPTIONS: Final = {
    "linger.ms": 50,
    "batch.num.messages": 10_000,
    "batch.size": 4_000_000,
    "queue.buffering.max.messages": 400_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "delivery.report.only.error": True,
}


def produce_bulk(
    bootstrap_servers: str, outgoing: Sequence[Outgoing], count: int, compression: str
) -> float:
    """Produce ``count`` messages as fast as possible; the seconds it took (flush included)."""
    sender = Sender(
        bootstrap_servers,
        outgoing,
        "openedx/lms/web",
        {**BULK_OPTIONS, "compression.type": compression},
    )
    started = time.perf_counter()
    stamp = b""
    for index in range(count):
        if index % 1000 == 0:
            stamp = datetime.now(UTC).isoformat().encode()
            sender.producer.poll(0)
        sender.send(stamp)
    sender.flush()
    return time.perf_counter() - started


@attrs.frozen
class Probe:
    """One message of the latency run: where it landed and when it was stamped."""

    topic: str
    partition: int
    offset: int
    stamped: float


def produce_paced(
    bootstrap_servers: str,
    outgoing: Sequence[Outgoing],
    rate: float,
    seconds: float,
    source: str,
) -> list[Probe]:
    """Produce ``rate`` messages per second for ``seconds``; each message's position and stamp.

    The ``ce_time`` header is the wall-clock time of the ``produce`` call, as a producer
    application would stamp it; messages go out with librdkafka's default 5 ms linger.
    """
    sender = Sender(bootstrap_servers, outgoing, source, {"linger.ms": 5})
    probes: list[Probe] = []

    def delivered(stamped: float, error: Any, message: Any) -> None:
        if error is not None:
            sender.errors.append(str(error))
            return
        probes.append(Probe(message.topic(), message.partition(), message.offset(), stamped))

    started = time.monotonic()
    for index in range(round(rate * seconds)):
        due = started + index / rate
        while (wait := due - time.monotonic()) > 0:
            sender.producer.poll(wait)  # serves delivery reports while waiting
        now = datetime.now(UTC)
        sender.send(now.isoformat().encode(), functools.partial(delivered, now.timestamp()))
    sender.flush()
    return probes
