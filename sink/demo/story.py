"""What happens in the demo, day by day: learners register, log in, enroll, study, pass, leave.

:class:`Story` plays one day at a time and hands every event to an :class:`Outlet` with its time;
the outlet (:mod:`sink.demo.traffic`) puts them in time order. State changes when an event is
decided, and every event that depends on another is timed after it, so the stream is coherent:

* a learner registers before anything else they do, and logs in at the start of each study day;
* enrollment changes, unenrollments, grades, certificates, exams, forum posts and course tracking
  logs come after the enrollment, and nothing but refunds after the unenrollment;
* grades only rise; the passing status turns true once, when the grade reaches the pass mark;
  a certificate is created then (certificate modes only), and may later change or be revoked;
* an exam attempt is submitted, then reviewed (verified, rejected, errored or reset) later;
* enterprise learners pay with learner credit: a ledger transaction is created, then committed
  (with the enrollment and the subsidy redemption) or failed; unenrolling within the refund
  window reverses it.

A session fits in its day (it starts by 21:30 UTC), so a learner's days never overlap.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import attrs

from sink.demo import payloads as p
from sink.demo import tracking
from sink.demo.ids import object_id
from sink.demo.tracking import Visit
from sink.demo.world import CERTIFICATE_MODES, Course, Enrollment, Learner, World
from sink.events import (
    CohortData,
    CourseAccessRoleData,
    CoursePassingStatusData,
    ExamAttemptData,
    LedgerTransaction,
)

LMS: Final = "lms"
EXAMS: Final = "edx-exams"
SUBSIDY: Final = "enterprise-subsidy"

REFUND_WINDOW: Final = timedelta(days=14)
EARLIEST_SESSION_H: Final = 0.5
LATEST_SESSION_H: Final = 21.5
UNENROLL_CHANCE: Final = 0.035
UPGRADE_CHANCE: Final = 0.04
FORUM_CHANCE: Final = 0.12
EXAM_CHANCE: Final = 0.4
EXAM_MIN_PERCENT: Final = 0.35
REVOKE_CHANCE_PER_DAY: Final = 0.002
EXAM_OUTCOMES: Final = (
    (p.EXAM_VERIFIED, 0.78),
    (p.EXAM_REJECTED, 0.08),
    (p.EXAM_ERRORED, 0.07),
    (p.EXAM_RESET, 0.07),
)


class Outlet(Protocol):
    """Where the story's events go."""

    def emit(self, moment: datetime, event_type: str, data: Any, service: str = LMS) -> None:
        """Take one event happening at ``moment`` in ``service``."""


@attrs.frozen
class Session:
    """A learner's study time on one day.

    Attributes:
        learner: The learner.
        session_id: Session id, as tracking logs show it.
        begin: When they start studying (after logging in and enrolling).
        end: When they stop.
        courses: The courses they study, enrolled during the whole session.
    """

    learner: Learner
    session_id: str
    begin: datetime
    end: datetime
    courses: tuple[Course, ...]

    def weight(self) -> float:
        """How many tracking logs the session gets, relatively."""
        return (self.end - self.begin).total_seconds() * len(self.courses)


#: Something a learner does in a course during a session, at a given time.
_Action = Callable[[Visit, Enrollment, datetime], None]


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class Story:
    """Plays the days of ``world`` into ``outlet``, drawing every choice from ``rng``."""

    def __init__(self, rng: random.Random, world: World, outlet: Outlet, start: datetime) -> None:
        self.rng = rng
        self.world = world
        self.out = outlet
        self.start = start
        self.certified: list[tuple[Learner, Enrollment]] = []

    # --- a day ---------------------------------------------------------------------------------

    def play_day(self, day: int) -> list[Session]:
        """Every learner's session of ``day`` (emitting their events); staff work last."""
        day_start = self.start + timedelta(days=day)
        if day == 0:
            self._staff_roles(day_start)
        sessions = [
            self._session(learner, day_start)
            for learner in self.world.learners
            if self._studies(learner, day)
        ]
        self._revocations(day_start)
        return sessions

    def browse(self, sessions: Sequence[Session], count: int, day: int) -> None:
        """Spread ``count`` browsing tracking logs over the sessions, by their weight."""
        studying = [session for session in sessions if session.courses]
        if count <= 0:
            return
        if not studying and (extra := self._extra_session(day)) is not None:
            studying = [extra]
        if not studying:
            return
        picks = self.rng.choices(range(len(studying)), [s.weight() for s in studying], k=count)
        for index, times in sorted(Counter(picks).items()):
            self._browse_session(studying[index], times)

    def _studies(self, learner: Learner, day: int) -> bool:
        if learner.registration_day > day:
            return False
        return not learner.registered or self.rng.random() < learner.engagement

    def _browse_session(self, session: Session, times: int) -> None:
        span = (session.end - session.begin).total_seconds()
        for _ in range(times):
            moment = session.begin + _seconds(self.rng.random() * span)
            visit = Visit(session.learner, self.rng.choice(session.courses), session.session_id)
            self.out.emit(moment, p.TRACKING, tracking.browsing(self.rng, visit, moment))

    def _extra_session(self, day: int) -> Session | None:
        """A session for someone enrolled, when nobody studied on a day that needs browsing."""
        enrolled = [
            learner
            for learner in self.world.learners
            if learner.registered and learner.active_enrollments()
        ]
        if not enrolled:
            return None
        return self._session(self.rng.choice(enrolled), self.start + timedelta(days=day))

    # --- a session -----------------------------------------------------------------------------

    def _session(self, learner: Learner, day_start: datetime) -> Session:
        rng = self.rng
        hour = learner.hour + rng.gauss(0, 1.5)
        if not EARLIEST_SESSION_H <= hour <= LATEST_SESSION_H:
            hour = rng.uniform(EARLIEST_SESSION_H, LATEST_SESSION_H)
        moment = day_start + timedelta(hours=hour)
        session_id = f"{rng.getrandbits(128):032x}"
        first_day = not learner.registered
        if first_day:
            learner.registered = True
            inactive = attrs.evolve(learner.user, is_active=False)  # until the e-mail is confirmed
            self.out.emit(moment, p.REGISTRATION, inactive)
            moment += _seconds(rng.uniform(20, 120))
        self.out.emit(moment, p.LOGIN, learner.user)
        moment += _seconds(rng.uniform(15, 90))
        wants_more = len(learner.enrollments) < learner.wanted_courses
        if wants_more and (first_day or rng.random() < 0.3):
            moment = self._enroll(learner, moment, session_id)
        active = learner.active_enrollments()
        studying = rng.sample(active, min(len(active), rng.choice((1, 1, 2))))
        end = moment + timedelta(minutes=rng.uniform(10, 80))
        for enrollment in studying:
            self._study(learner, enrollment, moment, end, session_id)
        leaving = [e for e in studying if e.passed_at is None and e.exam_attempts == 0]
        if leaving and rng.random() < UNENROLL_CHANCE:
            visit = Visit(learner, (gone := rng.choice(leaving)).course, session_id)
            self._unenroll(visit, gone, end + _seconds(rng.uniform(5, 60)))
        return Session(learner, session_id, moment, end, tuple(e.course for e in studying))

    def _study(
        self, learner: Learner, enrollment: Enrollment, begin: datetime, end: datetime, sid: str
    ) -> None:
        """Graded problems, maybe a forum post, an exam, an upgrade: in random order."""
        rng = self.rng
        span = (end - begin).total_seconds()
        graded = rng.choices((0, 1, 2, 3), (0.5, 0.3, 0.15, 0.05))[0]
        actions: list[_Action] = [self._graded] * graded
        if rng.random() < FORUM_CHANCE:
            actions.append(self._forum)
        if self._may_take_exam(enrollment) and rng.random() < EXAM_CHANCE:
            actions.append(self._exam)
        if enrollment.mode == "audit" and rng.random() < UPGRADE_CHANCE:
            actions.append(self._upgrade)
        times = sorted(begin + _seconds(rng.uniform(5, span)) for _ in actions)
        visit = Visit(learner, enrollment.course, sid)
        for action, moment in zip(rng.sample(actions, len(actions)), times, strict=True):
            action(visit, enrollment, moment)

    # --- enrollments ---------------------------------------------------------------------------

    def _enroll(self, learner: Learner, moment: datetime, session_id: str) -> datetime:
        """Enroll in a course not taken yet; return when the learner is done enrolling."""
        rng = self.rng
        courses = [c for c in self.world.courses if str(c.key) not in learner.enrollments]
        if not courses:
            return moment
        course = rng.choices(courses, [c.template.popularity for c in courses])[0]
        modes = course.template.modes
        mode = rng.choices(modes, [weight for _, weight in modes])[0][0]
        funding = None
        if learner.customer is not None and rng.random() < 0.8:
            moment, funding = self._learner_credit(learner, course, moment)
            mode = _paid_mode(course) if funding is not None else "audit"
        enrollment = Enrollment(course, mode, moment, funding=funding)
        learner.enrollments[str(course.key)] = enrollment
        staff = rng.choice(self.world.staff) if rng.random() < 0.04 else None
        self.out.emit(moment, p.ENROLLMENT_CREATED, p.enrollment(learner.user, enrollment, staff))
        visit = Visit(learner, course, session_id)
        logged_at = moment + _seconds(0.05)
        activated = tracking.enrollment_event(
            "edx.course.enrollment.activated", visit, logged_at, mode
        )
        self.out.emit(logged_at, p.TRACKING, activated)
        if course.template.cohorts:
            cohort = CohortData(learner.user, course.data, rng.choice(course.template.cohorts))
            self.out.emit(moment + _seconds(1), p.COHORT_CHANGED, cohort)
        if funding is not None:
            self._commit_credit(learner, course, funding, moment)
        return moment + _seconds(rng.uniform(60, 240))

    def _learner_credit(
        self, learner: Learner, course: Course, moment: datetime
    ) -> tuple[datetime, LedgerTransaction | None]:
        """Create the ledger transaction; fail it sometimes. Returns (enroll time, transaction)."""
        assert learner.customer is not None  # noqa: S101 - callers check
        transaction = p.ledger_transaction(self.rng, learner, learner.customer, course, moment)
        self.out.emit(moment, p.LEDGER_CREATED, transaction, SUBSIDY)
        if self.rng.random() < 0.08:
            failed_at = moment + _seconds(2)
            failed = attrs.evolve(transaction, state="failed", modified=failed_at)
            self.out.emit(failed_at, p.LEDGER_FAILED, failed, SUBSIDY)
            return moment + _seconds(30), None
        return moment + _seconds(1), transaction

    def _commit_credit(
        self, learner: Learner, course: Course, transaction: LedgerTransaction, enrolled: datetime
    ) -> None:
        assert learner.customer is not None  # noqa: S101 - callers check
        committed_at = enrolled + _seconds(1)
        committed = attrs.evolve(
            transaction,
            state="committed",
            modified=committed_at,
            fulfillment_identifier=str(object_id(self.rng)),
        )
        learner.enrollments[str(course.key)].funding = committed
        self.out.emit(committed_at, p.LEDGER_COMMITTED, committed, SUBSIDY)
        redeemed = p.redemption(learner, learner.customer, course)
        self.out.emit(committed_at + _seconds(1), p.REDEEMED, redeemed, SUBSIDY)

    def _upgrade(self, visit: Visit, enrollment: Enrollment, moment: datetime) -> None:
        enrollment.mode = _paid_mode(enrollment.course)
        data = p.enrollment(visit.learner.user, enrollment, None)
        self.out.emit(moment, p.ENROLLMENT_CHANGED, data)
        logged_at = moment + _seconds(0.05)
        changed = tracking.enrollment_event(
            "edx.course.enrollment.mode_changed", visit, logged_at, enrollment.mode
        )
        self.out.emit(logged_at, p.TRACKING, changed)

    def _unenroll(self, visit: Visit, enrollment: Enrollment, moment: datetime) -> None:
        enrollment.active = False
        data = p.enrollment(visit.learner.user, enrollment, None)
        self.out.emit(moment, p.UNENROLLMENT, data)
        logged_at = moment + _seconds(0.05)
        left = tracking.enrollment_event(
            "edx.course.enrollment.deactivated", visit, logged_at, enrollment.mode
        )
        self.out.emit(logged_at, p.TRACKING, left)
        funding = enrollment.funding
        if funding is None or moment - enrollment.created > REFUND_WINDOW:
            return
        reversed_at = moment + _seconds(2)
        refund = p.reversal(self.rng, funding, reversed_at)
        self.out.emit(
            reversed_at,
            p.LEDGER_REVERSED,
            attrs.evolve(funding, modified=reversed_at, reversal=refund),
            SUBSIDY,
        )

    # --- grades and certificates ---------------------------------------------------------------

    def _graded(self, visit: Visit, enrollment: Enrollment, moment: datetime) -> None:
        """A correct answer to a graded problem raises the course grade."""
        rng, course = self.rng, enrollment.course
        check = tracking.problem_check(rng, visit, moment - _seconds(2), correct=True)
        self.out.emit(moment - _seconds(2), p.TRACKING, check)
        first = not enrollment.graded
        was_passing = enrollment.passed_at is not None
        step = rng.uniform(0.03, 0.12) * visit.learner.ability
        enrollment.percent = min(1.0, round(enrollment.percent + step, 2))
        enrollment.graded = True
        passing = enrollment.percent >= course.pass_mark
        if passing and not was_passing:
            enrollment.passed_at = moment
        self.out.emit(moment, p.GRADE_CHANGED, p.grade(visit.learner, enrollment, moment))
        if first or passing != was_passing:
            status = CoursePassingStatusData(passing, course.data, visit.learner.user)
            self.out.emit(moment + _seconds(1), p.PASSING_STATUS, status)
        if passing and not was_passing and enrollment.mode in CERTIFICATE_MODES:
            self._certify(visit.learner, enrollment, moment + _seconds(rng.uniform(60, 600)))
        elif _certified_before(enrollment, moment) and rng.random() < 0.08:
            regenerated = p.certificate(visit.learner, enrollment, "downloadable", "downloadable")
            self.out.emit(moment + _seconds(120), p.CERTIFICATE_CHANGED, regenerated)

    def _certify(self, learner: Learner, enrollment: Enrollment, moment: datetime) -> None:
        enrollment.certificate = "downloadable"
        enrollment.certified_at = moment
        enrollment.certificate_url = f"https://{p.HOST}/certificates/{object_id(self.rng)}"
        created = p.certificate(learner, enrollment, "downloadable", "")
        self.out.emit(moment, p.CERTIFICATE_CREATED, created)
        self.certified.append((learner, enrollment))

    def _revocations(self, day_start: datetime) -> None:
        """Staff revoke a few certificates, late in the day (after every session)."""
        for learner, enrollment in self.certified:
            if enrollment.certificate != "downloadable":
                continue
            if self.rng.random() < REVOKE_CHANCE_PER_DAY:
                enrollment.certificate = "unavailable"
                moment = day_start + timedelta(hours=23.5, seconds=self.rng.uniform(0, 1500))
                data = p.certificate(learner, enrollment, "unavailable", "downloadable")
                self.out.emit(moment, p.CERTIFICATE_REVOKED, data)

    # --- exams and forums ----------------------------------------------------------------------

    @staticmethod
    def _may_take_exam(enrollment: Enrollment) -> bool:
        if enrollment.course.template.exam_type == "proctored" and enrollment.mode == "audit":
            return False
        return not enrollment.exam_done and enrollment.percent >= EXAM_MIN_PERCENT

    def _exam(self, visit: Visit, enrollment: Enrollment, moment: datetime) -> None:
        """Submit an exam attempt; the review comes later (minutes, or hours when proctored)."""
        if enrollment.exam_free_at is not None and moment < enrollment.exam_free_at:
            return
        rng, course, user = self.rng, enrollment.course, visit.learner.user
        attempt = ExamAttemptData(user, course.key, course.exam, course.template.exam_type, user)
        self.out.emit(moment, p.EXAM_SUBMITTED, attempt, EXAMS)
        enrollment.exam_attempts += 1
        outcome = rng.choices(EXAM_OUTCOMES, [weight for _, weight in EXAM_OUTCOMES])[0][0]
        proctored = course.template.exam_type == "proctored"
        delay = timedelta(hours=rng.uniform(2, 36)) if proctored else _seconds(rng.uniform(5, 300))
        reviewer = rng.choice(self.world.staff) if proctored or outcome == p.EXAM_RESET else None
        reviewed_at = moment + delay
        reviewed = attrs.evolve(attempt, requesting_user=reviewer)
        self.out.emit(reviewed_at, outcome, reviewed, EXAMS)
        retry = outcome in (p.EXAM_ERRORED, p.EXAM_RESET) and enrollment.exam_attempts < 2
        enrollment.exam_done = not retry
        enrollment.exam_free_at = reviewed_at + timedelta(hours=1)

    def _forum(self, visit: Visit, enrollment: Enrollment, moment: datetime) -> None:
        """Start a thread, respond to one, or comment on a response."""
        rng, course = self.rng, enrollment.course
        threads = self.world.threads[str(course.key)]
        # Others' sessions of the day may be decided already but come later: only earlier posts.
        recent = [thread for thread in threads[-10:] if thread.created < moment]
        answered = [thread for thread in recent if thread.answered_before(moment)]
        choice = rng.random()
        post_id = object_id(rng)
        if not recent or choice < 0.4:
            thread = p.new_thread(rng, course, post_id, moment)
            threads.append(thread)
            event_type, name = p.THREAD_CREATED, "edx.forum.thread.created"
        elif choice < 0.8 or not answered:
            thread = rng.choice(recent)
            thread.responses.append((post_id, moment))
            event_type, name = p.RESPONSE_CREATED, "edx.forum.response.created"
        else:
            thread = rng.choice(answered)
            event_type, name = p.COMMENT_CREATED, "edx.forum.comment.created"
        data = p.post(rng, visit.learner, course, thread, post_id)
        self.out.emit(moment, event_type, data)
        logged_at = moment + _seconds(0.2)
        logged = tracking.forum_event(name, visit, logged_at, thread, post_id)
        self.out.emit(logged_at, p.TRACKING, logged)

    # --- staff ---------------------------------------------------------------------------------

    def _staff_roles(self, day_start: datetime) -> None:
        """Course teams get their roles at the start of the timeline."""
        moment = day_start + timedelta(minutes=1)
        for index, course in enumerate(self.world.courses):
            for offset, role in enumerate(("instructor", "staff")):
                staff = self.world.staff[(index + offset) % len(self.world.staff)]
                data = CourseAccessRoleData(staff, course.template.org, course.key, role)
                moment += _seconds(self.rng.uniform(1, 20))
                self.out.emit(moment, p.ACCESS_ROLE_ADDED, data)


def _paid_mode(course: Course) -> str:
    return next(mode for mode, _ in course.template.modes if mode != "audit")


def _certified_before(enrollment: Enrollment, moment: datetime) -> bool:
    """Whether the enrollment holds a downloadable certificate created before ``moment``."""
    certified_at = enrollment.certified_at
    return (
        enrollment.certificate == "downloadable"
        and certified_at is not None
        and (certified_at < moment)
    )
