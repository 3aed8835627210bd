"""The demo traffic: deterministic, exactly as many events as asked, coherent, in time order."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sink import catalog
from sink.demo import payloads as p
from sink.demo import traffic
from sink.demo.story import EXAMS, LMS, SUBSIDY
from sink.demo.traffic import DemoEvent
from sink.demo.world import CERTIFICATE_MODES, COURSES, STAFF_IDS
from sink.events import UserData

START = datetime(2026, 1, 5, tzinfo=UTC)
END = START + timedelta(days=traffic.DAYS)
UUID_EPOCH = datetime(1582, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def story() -> list[DemoEvent]:
    """A run long enough to hold every event type the demo emits."""
    return list(traffic.generate(1, 20_000, START))


@pytest.fixture(scope="module")
def stories() -> list[list[DemoEvent]]:
    """A few shorter runs of other seeds, for the invariants."""
    return [list(traffic.generate(seed, 4000, START)) for seed in (2, 3, 4)]


def _all_runs(story: list[DemoEvent], stories: list[list[DemoEvent]]) -> list[list[DemoEvent]]:
    return [story, *stories]


# --- determinism and size -------------------------------------------------------------------------


def test_same_seed_and_start_give_the_same_events() -> None:
    assert list(traffic.generate(9, 3000, START)) == list(traffic.generate(9, 3000, START))


def test_another_seed_or_start_gives_other_events() -> None:
    first = list(traffic.generate(9, 3000, START))
    reseeded = list(traffic.generate(10, 3000, START))
    moved = list(traffic.generate(9, 3000, START + timedelta(days=1)))
    assert [e.event_id for e in first] != [e.event_id for e in reseeded]
    assert [e.data for e in first] != [e.data for e in reseeded]
    assert not {e.event_id for e in first} & {e.event_id for e in moved}


@pytest.mark.parametrize("count", [1, 7, 250, 2500, 9999])
def test_exactly_the_number_of_events_asked(count: int) -> None:
    assert sum(1 for _ in traffic.generate(5, count, START)) == count


def test_no_events_asked_gives_none_and_negative_is_refused() -> None:
    assert list(traffic.generate(5, 0, START)) == []
    with pytest.raises(ValueError, match="events must be >= 0"):
        traffic.generate(5, -1, START)


def test_a_naive_start_is_utc() -> None:
    naive = START.replace(tzinfo=None)
    assert list(traffic.generate(3, 200, naive)) == list(traffic.generate(3, 200, START))


def test_default_timeline_ends_at_the_last_midnight() -> None:
    now = datetime(2026, 11, 27, 7, 27, 3, tzinfo=UTC)
    start = traffic.default_start(now)
    assert start + timedelta(days=traffic.DAYS) == datetime(2026, 11, 27, tzinfo=UTC)


def test_the_timeline_is_filled_to_its_end(story: list[DemoEvent]) -> None:
    assert story[0].time - START < timedelta(hours=2)
    assert END - story[-1].time < timedelta(hours=12)


# --- ids, times, sources -------------------------------------------------------------------------


def test_times_strictly_increase_within_the_timeline(story: list[DemoEvent]) -> None:
    times = [event.time for event in story]
    assert all(earlier < later for earlier, later in itertools.pairwise(times))
    assert times[0] >= START
    assert times[-1] < END
    assert all(time.tzinfo is UTC for time in times)


def test_event_ids_are_unique_uuid1_of_the_event_time(story: list[DemoEvent]) -> None:
    assert len({event.event_id for event in story}) == len(story)
    for event in story[:500]:
        assert event.event_id.version == 1
        ticks = (event.time - UUID_EPOCH) // timedelta(microseconds=1) * 10
        assert event.event_id.time == ticks


def test_each_service_emits_its_own_events_from_its_own_hosts(story: list[DemoEvent]) -> None:
    nodes: dict[str, set[int]] = defaultdict(set)
    for event in story:
        expected = EXAMS if ".exam." in event.event_type else LMS
        if event.event_type.startswith("org.openedx.enterprise."):
            expected = SUBSIDY
        assert event.service == expected, event.event_type
        assert event.host.startswith(f"{event.service}-")
        nodes[event.host].add(event.event_id.node)
    assert len(nodes) == 3 * traffic.HOSTS_PER_SERVICE
    assert all(len(host_nodes) == 1 for host_nodes in nodes.values())


def test_payloads_are_of_the_catalog_class(story: list[DemoEvent]) -> None:
    for event in story:
        assert isinstance(event.data, catalog.spec_for(event.event_type).data_class)


def test_every_event_type_of_the_demo_appears(story: list[DemoEvent]) -> None:
    assert {event.event_type for event in story} == set(p.EVENT_TYPES)


def test_tracking_logs_are_most_of_the_traffic(story: list[DemoEvent]) -> None:
    counts = Counter(event.event_type for event in story)
    assert 0.5 < counts[p.TRACKING] / len(story) < 0.75
    assert counts[p.LOGIN] > counts[p.ENROLLMENT_CREATED] > counts[p.CERTIFICATE_CREATED]


def test_population_grows_with_the_events_asked() -> None:
    assert traffic.learners_for(10) == traffic.MIN_LEARNERS
    assert traffic.learners_for(80_000) == 1000


# --- coherence -----------------------------------------------------------------------------------


def _user_of(event: DemoEvent) -> int | None:
    """The learner an event is about (None for course staff's own events)."""
    data = event.data
    for path in ("user", "enrollment.user", "certificate.user", "student_user", "user_id"):
        value: Any = data
        for name in path.split("."):
            value = getattr(value, name, None)
        if isinstance(value, UserData):
            return int(value.id)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    if event.event_type == p.TRACKING:
        return int(json.loads(data.context)["user_id"])
    if event.event_type.startswith("org.openedx.enterprise."):
        return int(data.lms_user_id)
    return None


def _pair_of(event: DemoEvent) -> tuple[int, str] | None:
    """The (learner, course) an event is about, when it is about one."""
    data = event.data
    course: Any = None
    if event.event_type == p.TRACKING:
        course = json.loads(data.context)["course_id"]
    elif event.event_type.startswith("org.openedx.enterprise."):
        course = data.content_key
    else:
        for path in ("course.course_key", "course_key", "course_id"):
            value: Any = data
            for name in path.split("."):
                value = getattr(value, name, None)
            course = course or value
    user = _user_of(event)
    if course is None or user is None or user in STAFF_IDS:
        return None
    return user, str(course)


def _check_runs(
    story: list[DemoEvent], stories: list[list[DemoEvent]], check: Callable[[list[Any]], None]
) -> None:
    for run in _all_runs(story, stories):
        check(run)


def test_learners_register_before_anything_else(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    def check(run: list[DemoEvent]) -> None:
        registered: set[int] = set()
        for event in run:
            user = _user_of(event)
            if event.event_type == p.REGISTRATION:
                assert user not in registered
                assert event.data.is_active is False  # until the e-mail is confirmed
                registered.add(event.data.id)
            elif user is not None and user not in STAFF_IDS:
                assert user in registered, event.event_type

    _check_runs(story, stories, check)


def test_course_events_come_between_enrollment_and_unenrollment(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    """Nothing about a (learner, course) before its enrollment; after leaving, only refunds."""

    def check(run: list[DemoEvent]) -> None:
        enrolled: set[tuple[int, str]] = set()
        left: set[tuple[int, str]] = set()
        for event in run:
            pair = _pair_of(event)
            if pair is None or event.event_type in (p.LEDGER_CREATED, p.LEDGER_FAILED):
                continue
            if event.event_type == p.ENROLLMENT_CREATED:
                assert pair not in enrolled
                enrolled.add(pair)
                continue
            if event.event_type in (p.EXAM_VERIFIED, p.EXAM_REJECTED, p.EXAM_ERRORED):
                continue  # reviews may come after the learner left
            assert pair in enrolled, event.event_type
            assert pair not in left or _refund_or_farewell(event), event.event_type
            if event.event_type == p.UNENROLLMENT:
                assert event.data.is_active is False
                left.add(pair)

    _check_runs(story, stories, check)


def _refund_or_farewell(event: DemoEvent) -> bool:
    """What may follow an unenrollment: the tracking log of it, and the refund."""
    if event.event_type == p.TRACKING:
        return bool(event.data.name == "edx.course.enrollment.deactivated")
    return event.event_type == p.LEDGER_REVERSED


def test_grades_rise_and_letters_follow_the_pass_mark(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    pass_marks = {(c.org, c.number): c.cutoffs[-1][1] for c in COURSES}

    def check(run: list[DemoEvent]) -> None:
        grades: dict[tuple[int, str], float] = {}
        passed_at: dict[tuple[int, str], datetime] = {}
        for event in (e for e in run if e.event_type == p.GRADE_CHANGED):
            grade, pair = event.data, _pair_of(event)
            assert pair is not None
            assert grade.percent_grade >= grades.get(pair, 0.0)
            grades[pair] = grade.percent_grade
            key = grade.course.course_key
            passing = grade.percent_grade >= pass_marks[key.org, key.course]
            assert (grade.letter_grade != "") == passing
            if passing:
                assert grade.passed_timestamp == passed_at.setdefault(pair, grade.passed_timestamp)
                assert grade.passed_timestamp <= event.time

    _check_runs(story, stories, check)


def test_certificates_follow_a_passing_grade_in_a_certificate_mode(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    def check(run: list[DemoEvent]) -> None:
        passing: set[tuple[int, str]] = set()
        certified: dict[tuple[int, str], str] = {}
        for event in run:
            pair = _pair_of(event)
            if event.event_type == p.PASSING_STATUS and event.data.is_passing:
                assert pair is not None
                passing.add(pair)
            if not event.event_type.startswith("org.openedx.learning.certificate."):
                continue
            assert pair in passing
            assert event.data.mode in CERTIFICATE_MODES
            assert event.data.name == event.data.user.pii.name
            status = certified.get(pair)
            if event.event_type == p.CERTIFICATE_CREATED:
                assert status is None
                assert (event.data.current_status, event.data.previous_status) == (
                    "downloadable",
                    "",
                )
            else:
                assert status == "downloadable"
                assert event.data.previous_status == "downloadable"
            certified[pair] = event.data.current_status

    _check_runs(story, stories, check)


def test_exam_reviews_follow_a_submission(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    reviews = (p.EXAM_VERIFIED, p.EXAM_REJECTED, p.EXAM_ERRORED, p.EXAM_RESET)

    def check(run: list[DemoEvent]) -> None:
        open_attempts: Counter[tuple[int, str] | None] = Counter()
        for event in run:
            pair = _pair_of(event)
            if event.event_type == p.EXAM_SUBMITTED:
                assert event.data.requesting_user == event.data.student_user
                open_attempts[pair] += 1
            elif event.event_type in reviews:
                assert open_attempts[pair] > 0
                open_attempts[pair] -= 1

    _check_runs(story, stories, check)


def test_ledger_transactions_follow_their_lifecycle(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    def check(run: list[DemoEvent]) -> None:
        states: dict[Any, str] = {}
        redeemable: Counter[tuple[int, str]] = Counter()
        for event in run:
            data = event.data
            if event.event_type == p.LEDGER_CREATED:
                assert data.uuid not in states
                assert data.state == "created"
                assert data.quantity < 0
            elif event.event_type in (p.LEDGER_COMMITTED, p.LEDGER_FAILED):
                assert states.get(data.uuid) == "created"
                assert data.state == event.event_type.rsplit(".", 2)[1]
                assert data.modified > data.created
            elif event.event_type == p.LEDGER_REVERSED:
                assert states.get(data.uuid) == "committed"
                assert data.reversal.quantity == -data.quantity > 0
            elif event.event_type == p.REDEEMED:
                assert redeemable[data.lms_user_id, data.content_key] > 0
            else:
                continue
            if event.event_type == p.LEDGER_COMMITTED:
                redeemable[data.lms_user_id, str(data.content_key)] += 1
            if event.event_type != p.REDEEMED:
                states[data.uuid] = data.state if data.reversal is None else "reversed"

    _check_runs(story, stories, check)


def test_forum_responses_and_comments_answer_an_earlier_thread(
    story: list[DemoEvent], stories: list[list[DemoEvent]]
) -> None:
    def check(run: list[DemoEvent]) -> None:
        threads: set[str] = set()
        responded: set[str] = set()
        for event in run:
            if event.event_type == p.THREAD_CREATED:
                assert event.data.title
                assert event.data.discussion is None
                threads.add(event.data.id)
            elif event.event_type in (p.RESPONSE_CREATED, p.COMMENT_CREATED):
                thread_id = event.data.discussion["id"]
                assert thread_id in threads
                if event.event_type == p.COMMENT_CREATED:
                    assert thread_id in responded
                responded.add(thread_id)

    _check_runs(story, stories, check)


def test_people_are_fake(story: list[DemoEvent]) -> None:
    for event in story:
        for user in (getattr(event.data, "user", None), getattr(event.data, "student_user", None)):
            if isinstance(user, UserData):
                assert user.pii.username in user.pii.email
                assert user.pii.email.endswith("@example.com")
                assert user.pii.username == f"{'staff' if user.id < 4 else 'learner'}{user.id:04d}"


def test_tracking_logs_carry_lms_json(story: list[DemoEvent]) -> None:
    names: Counter[str] = Counter()
    for event in (e for e in story if e.event_type == p.TRACKING):
        context = json.loads(event.data.context)
        data = json.loads(event.data.data)
        assert timedelta(0) <= event.time - event.data.timestamp < timedelta(milliseconds=1)
        assert context["course_id"].startswith("course-v1:")
        assert context["org_id"] == context["course_id"].split(":")[1].split("+")[0]
        assert context["user_id"] >= STAFF_IDS[-1]
        assert context["path"]
        assert isinstance(data, dict)
        names[event.data.name if not event.data.name.startswith("/") else "page view"] += 1
    for name in ("problem_check", "play_video", "page view", "edx.course.enrollment.activated"):
        assert names[name] > 0
