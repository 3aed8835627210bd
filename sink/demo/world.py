"""The demo's cast: a fixed catalog of course runs, fake learners, course staff, enterprises.

Everything personal is invented: learners are ``learner0042`` / ``learner0042@example.com`` with
a name drawn from short lists, staff ``staff0001``, enterprises are ``Acme``-style placeholders
identified only by UUIDs. Learner ids start after the staff's (ids 1 to 3).

The mutable state of the story (who is enrolled where, grades, certificates) lives in
:class:`Enrollment` and :class:`Learner`; :mod:`sink.demo.traffic` changes it as time passes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

import attrs
from opaque_keys.edx.keys import CourseKey, UsageKey

from sink.demo.ids import object_id, random_uuid
from sink.events import CourseData, LedgerTransaction, UserData, UserPersonalData

FIRST_NAMES: Final = (
    "Ana", "Bo", "Chidi", "Dana", "Eitan", "Fatima", "Goran", "Hana", "Ivo", "Jia", "Kofi",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Yusuf",
)  # fmt: skip
LAST_NAMES: Final = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski", "Mensah",
    "Ortega", "Petrov", "Quispe", "Rahman", "Schmidt", "Nguyen", "Varga", "Wang", "Yilmaz",
)  # fmt: skip
LANGUAGES: Final = ("en-US,en;q=0.9", "es-419,es;q=0.9", "fr-FR,fr;q=0.8", "pt-BR,pt;q=0.9")
AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 edX/org.edx.mobile/5.1.0",
)
#: The documentation address ranges of RFC 5737: obviously not anyone's address.
IP_PREFIXES: Final = ("192.0.2", "198.51.100", "203.0.113")
STAFF_IDS: Final = (1, 2, 3)
FIRST_LEARNER_ID: Final = 4


@attrs.frozen
class CourseTemplate:
    """The fixed facts of one demo course; dates and the run come from the timeline.

    Attributes:
        org: Organization key.
        number: Course number.
        title: Display name.
        starts_before: Days the run starts before the timeline does.
        modes: Enrollment modes offered, with their weights for a new learner.
        cutoffs: Letter grades and their minimum percent, best first; the last is the pass mark.
        cohorts: Cohort names, when the course assigns learners to cohorts automatically.
        exam_type: Kind of the course's special exam (``timed`` or ``proctored``).
        price_cents: Price of the verified track, paid by enterprise learner credit.
        popularity: Relative weight of the course when a learner picks one.
    """

    org: str
    number: str
    title: str
    starts_before: int
    modes: tuple[tuple[str, float], ...]
    cutoffs: tuple[tuple[str, float], ...]
    cohorts: tuple[str, ...]
    exam_type: str
    price_cents: int
    popularity: float


COURSES: Final = (
    CourseTemplate(
        "DemoX", "PY101", "Python for Everyone", 21,
        (("audit", 0.6), ("verified", 0.4)), (("Pass", 0.5),),
        ("Group A", "Group B"), "timed", 9900, 0.32,
    ),
    CourseTemplate(
        "DemoX", "DS201", "Data Science Foundations", 14,
        (("audit", 0.55), ("verified", 0.45)), (("A", 0.85), ("B", 0.7), ("C", 0.6)),
        (), "proctored", 19900, 0.24,
    ),
    CourseTemplate(
        "OpenU", "HIST110", "World History since 1900", 10,
        (("audit", 0.7), ("honor", 0.3)), (("Pass", 0.5),),
        (), "timed", 4900, 0.18,
    ),
    CourseTemplate(
        "OpenU", "BIO150", "Introduction to Biology", 7,
        (("audit", 0.65), ("verified", 0.35)), (("Pass", 0.55),),
        ("Morning", "Evening"), "timed", 9900, 0.15,
    ),
    CourseTemplate(
        "TechCo", "ML300", "Applied Machine Learning", 3,
        (("audit", 0.4), ("professional", 0.6)), (("Pass", 0.65),),
        (), "proctored", 29900, 0.11,
    ),
)  # fmt: skip

TOPIC_NAMES: Final = ("General", "Week 1", "Week 2", "Week 3", "Exams")
#: Enrollment modes that earn a certificate.
CERTIFICATE_MODES: Final = frozenset({"verified", "honor", "professional"})


@attrs.frozen
class Course:
    """A course run of the demo.

    Attributes:
        template: Its fixed facts.
        data: The ``CourseData`` events carry (key, title, start, end).
        edited: When the course was last published.
        version: Published content version (an object id).
        grading_policy_hash: Hash of the grading policy.
        exam: Usage key of the special exam.
        problems: Usage keys of graded problems.
        videos: Ids of the videos.
        sequentials: Usage keys of the subsections.
        topics: Discussion topics as (commentable id, name).
    """

    template: CourseTemplate
    data: CourseData
    edited: datetime
    version: str
    grading_policy_hash: str
    exam: UsageKey
    problems: tuple[UsageKey, ...]
    videos: tuple[str, ...]
    sequentials: tuple[UsageKey, ...]
    topics: tuple[tuple[str, str], ...]

    @property
    def key(self) -> CourseKey:
        """The course run's key."""
        return self.data.course_key

    @property
    def pass_mark(self) -> float:
        """The lowest passing percent."""
        return self.template.cutoffs[-1][1]

    def letter_grade(self, percent: float) -> str:
        """The letter of ``percent``: the best cutoff reached, empty below the pass mark."""
        return next((letter for letter, low in self.template.cutoffs if percent >= low), "")


@attrs.frozen
class Customer:
    """An enterprise customer paying its learners' enrollments with learner credit.

    Attributes:
        uuid: The customer.
        subsidy: The learner-credit subsidy (its identifier in redemptions).
        ledger: The subsidy's ledger.
        policy: The subsidy access policy the transactions are made under.
    """

    uuid: UUID
    subsidy: UUID
    ledger: UUID
    policy: UUID


@attrs.frozen
class Persona:
    """How a learner's browser shows in tracking logs.

    Attributes:
        agent: User agent.
        language: Accept-Language header.
        ip: IP address (from the documentation ranges).
        client_id: Analytics client id.
    """

    agent: str
    language: str
    ip: str
    client_id: str


@attrs.define
class Thread:
    """A forum thread of a course, and its responses.

    Attributes:
        id: Thread id.
        created: When it was started.
        commentable_id: Discussion topic the thread is in.
        topic: Name of that topic.
        title: Thread title.
        url: Where the thread is shown.
        responses: Ids of the responses posted so far, with their times.
    """

    id: str
    created: datetime
    commentable_id: str
    topic: str
    title: str
    url: str
    responses: list[tuple[str, datetime]] = attrs.field(factory=list)

    def answered_before(self, moment: datetime) -> bool:
        """Whether a response was posted before ``moment``."""
        return any(posted < moment for _, posted in self.responses)


@attrs.define
class Enrollment:
    """A learner's enrollment in a course, and their progress in it.

    Attributes:
        course: The course run.
        mode: Current enrollment mode.
        created: When the learner enrolled.
        active: False once unenrolled.
        percent: Current course grade, 0 to 1.
        graded: Whether a grade was computed yet.
        passed_at: When the grade first reached the pass mark.
        certificate: Certificate status: empty (none), ``downloadable`` or ``unavailable``.
        certificate_url: Where the certificate is shown, once created.
        certified_at: When the certificate was created, if it was.
        exam_free_at: When the learner may take the exam again (None before a first attempt).
        exam_attempts: Exam attempts submitted.
        exam_done: Whether the exam is over for the learner (reviewed, or out of attempts).
        funding: The committed ledger transaction that paid for the enrollment, if any.
    """

    course: Course
    mode: str
    created: datetime
    active: bool = True
    percent: float = 0.0
    graded: bool = False
    passed_at: datetime | None = None
    certificate: str = ""
    certificate_url: str = ""
    certified_at: datetime | None = None
    exam_free_at: datetime | None = None
    exam_attempts: int = 0
    exam_done: bool = False
    funding: LedgerTransaction | None = None


@attrs.define
class Learner:
    """A fake learner and their story so far.

    Attributes:
        user: The ``UserData`` events carry.
        persona: How their browser shows in tracking logs.
        registration_day: Day of the timeline they register on.
        hour: Preferred hour of the day for studying (UTC).
        engagement: Chance to study on any given day.
        ability: How fast their grades rise (about 0.5 to 1.5).
        wanted_courses: How many courses they mean to take.
        customer: Their enterprise, when they learn with an employer's learner credit.
        enrollments: Their enrollments by course key text, in enrollment order.
        registered: Whether the registration happened yet.
    """

    user: UserData
    persona: Persona
    registration_day: int
    hour: float
    engagement: float
    ability: float
    wanted_courses: int
    customer: Customer | None
    enrollments: dict[str, Enrollment] = attrs.field(factory=dict)
    registered: bool = False

    def active_enrollments(self) -> list[Enrollment]:
        """Enrollments not unenrolled, in enrollment order."""
        return [enrollment for enrollment in self.enrollments.values() if enrollment.active]


@attrs.frozen
class World:
    """The whole cast of one demo run.

    Attributes:
        courses: The course runs.
        staff: Course staff (instructors, reviewers).
        learners: Learners, in id order.
        customers: Enterprise customers.
        threads: Forum threads per course key text, oldest first.
    """

    courses: tuple[Course, ...]
    staff: tuple[UserData, ...]
    learners: tuple[Learner, ...]
    customers: tuple[Customer, ...]
    threads: dict[str, list[Thread]]


def build_world(rng: random.Random, learners: int, start: datetime, days: int) -> World:
    """The cast of a timeline of ``days`` days from ``start``, with ``learners`` learners."""
    courses = tuple(_course(rng, template, start) for template in COURSES)
    customers = tuple(
        Customer(random_uuid(rng), random_uuid(rng), random_uuid(rng), random_uuid(rng))
        for _ in range(2)
    )
    return World(
        courses=courses,
        staff=tuple(_user(user_id, "staff", rng) for user_id in STAFF_IDS),
        learners=tuple(
            _learner(rng, FIRST_LEARNER_ID + index, customers, days) for index in range(learners)
        ),
        customers=customers,
        threads={str(course.key): [] for course in courses},
    )


def _course(rng: random.Random, template: CourseTemplate, timeline_start: datetime) -> Course:
    start = timeline_start - timedelta(days=template.starts_before)
    run = f"{start.year}_T{(start.month - 1) // 4 + 1}"
    key = CourseKey.from_string(f"course-v1:{template.org}+{template.number}+{run}")
    data = CourseData(
        course_key=key,
        display_name=template.title,
        start=start,
        end=start + timedelta(weeks=rng.choice((10, 12, 14))),
    )
    return Course(
        template=template,
        data=data,
        edited=start - timedelta(days=rng.randrange(2, 30), seconds=rng.randrange(86_400)),
        version=object_id(rng),
        grading_policy_hash=f"{rng.getrandbits(160):040x}"[:28],
        exam=key.make_usage_key("sequential", "final_exam"),
        problems=tuple(key.make_usage_key("problem", object_id(rng)) for _ in range(12)),
        videos=tuple(f"{rng.getrandbits(128):032x}" for _ in range(10)),
        sequentials=tuple(key.make_usage_key("sequential", object_id(rng)) for _ in range(8)),
        topics=tuple((object_id(rng), name) for name in TOPIC_NAMES),
    )


def _user(user_id: int, role: str, rng: random.Random) -> UserData:
    username = f"{role}{user_id:04d}"
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    pii = UserPersonalData(username=username, email=f"{username}@example.com", name=name)
    return UserData(id=user_id, is_active=True, pii=pii)


def _learner(
    rng: random.Random, user_id: int, customers: tuple[Customer, ...], days: int
) -> Learner:
    # A third register at the launch, the others over the first two thirds of the timeline.
    launch = rng.random() < 0.35
    return Learner(
        user=_user(user_id, "learner", rng),
        persona=Persona(
            agent=rng.choice(AGENTS),
            language=rng.choice(LANGUAGES),
            ip=f"{rng.choice(IP_PREFIXES)}.{rng.randrange(1, 255)}",
            client_id=f"{rng.getrandbits(31)}.{rng.getrandbits(31)}",
        ),
        registration_day=rng.randrange(2) if launch else rng.randrange(days * 2 // 3),
        hour=rng.uniform(6.0, 22.0),
        engagement=rng.uniform(0.12, 0.6),
        ability=rng.uniform(0.5, 1.5),
        wanted_courses=rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0],
        customer=rng.choice(customers) if rng.random() < 0.15 else None,
    )
