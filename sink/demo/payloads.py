"""The event types the demo emits, and the payloads it builds from the story's state.

Payloads are the sink's own attrs classes (:mod:`sink.events`), filled the way the producing
service fills them: edx-platform for learning events, edx-exams for exam attempts,
enterprise-subsidy for redemptions and ledger transactions.

``org.openedx.enterprise.subsidy.redemption-reversed.v1`` is left out: its Avro namespace (the
event type) holds a hyphen, which no Schema Registry accepts, so Open edX cannot publish it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final

from sink.demo.ids import random_uuid
from sink.demo.world import Course, Customer, Enrollment, Learner, Thread
from sink.events import (
    CertificateData,
    CourseEnrollmentData,
    DiscussionThreadData,
    LedgerTransaction,
    LedgerTransactionReversal,
    PersistentCourseGradeData,
    SubsidyRedemption,
    UserData,
)

_LEARNING: Final = "org.openedx.learning"
_ENTERPRISE: Final = "org.openedx.enterprise"
REGISTRATION: Final = f"{_LEARNING}.student.registration.completed.v1"
LOGIN: Final = f"{_LEARNING}.auth.session.login.completed.v1"
ENROLLMENT_CREATED: Final = f"{_LEARNING}.course.enrollment.created.v1"
ENROLLMENT_CHANGED: Final = f"{_LEARNING}.course.enrollment.changed.v1"
UNENROLLMENT: Final = f"{_LEARNING}.course.unenrollment.completed.v1"
COHORT_CHANGED: Final = f"{_LEARNING}.cohort_membership.changed.v1"
ACCESS_ROLE_ADDED: Final = f"{_LEARNING}.user.course_access_role.added.v1"
GRADE_CHANGED: Final = f"{_LEARNING}.course.persistent_grade_summary.changed.v1"
PASSING_STATUS: Final = f"{_LEARNING}.course.passing.status.updated.v1"
CERTIFICATE_CREATED: Final = f"{_LEARNING}.certificate.created.v1"
CERTIFICATE_CHANGED: Final = f"{_LEARNING}.certificate.changed.v1"
CERTIFICATE_REVOKED: Final = f"{_LEARNING}.certificate.revoked.v1"
THREAD_CREATED: Final = f"{_LEARNING}.forum.thread.created.v1"
RESPONSE_CREATED: Final = f"{_LEARNING}.forum.thread.response.created.v1"
COMMENT_CREATED: Final = f"{_LEARNING}.forum.thread.response.comment.created.v1"
EXAM_SUBMITTED: Final = f"{_LEARNING}.exam.attempt.submitted.v1"
EXAM_VERIFIED: Final = f"{_LEARNING}.exam.attempt.verified.v1"
EXAM_REJECTED: Final = f"{_LEARNING}.exam.attempt.rejected.v1"
EXAM_ERRORED: Final = f"{_LEARNING}.exam.attempt.errored.v1"
EXAM_RESET: Final = f"{_LEARNING}.exam.attempt.reset.v1"
TRACKING: Final = "org.openedx.analytics.tracking.event.emitted.v1"
REDEEMED: Final = f"{_ENTERPRISE}.subsidy.redeemed.v1"
LEDGER_CREATED: Final = f"{_ENTERPRISE}.subsidy_ledger_transaction.created.v1"
LEDGER_COMMITTED: Final = f"{_ENTERPRISE}.subsidy_ledger_transaction.committed.v1"
LEDGER_FAILED: Final = f"{_ENTERPRISE}.subsidy_ledger_transaction.failed.v1"
LEDGER_REVERSED: Final = f"{_ENTERPRISE}.subsidy_ledger_transaction.reversed.v1"

#: Every event type the demo emits.
EVENT_TYPES: Final = (
    REGISTRATION, LOGIN, ENROLLMENT_CREATED, ENROLLMENT_CHANGED, UNENROLLMENT, COHORT_CHANGED,
    ACCESS_ROLE_ADDED, GRADE_CHANGED, PASSING_STATUS, CERTIFICATE_CREATED, CERTIFICATE_CHANGED,
    CERTIFICATE_REVOKED, THREAD_CREATED, RESPONSE_CREATED, COMMENT_CREATED, EXAM_SUBMITTED,
    EXAM_VERIFIED, EXAM_REJECTED, EXAM_ERRORED, EXAM_RESET, TRACKING, REDEEMED, LEDGER_CREATED,
    LEDGER_COMMITTED, LEDGER_FAILED, LEDGER_REVERSED,
)  # fmt: skip

HOST: Final = "courses.example.com"
THREAD_TITLES: Final = (
    "How is the final grade computed?",
    "Stuck on the second problem set",
    "Study group for this week?",
    "Video 3 does not load on mobile",
    "Recommended reading beyond the course",
    "Question about the exam rules",
)
POST_BODIES: Final = (
    "I re-watched the lecture but I still do not get the last step. Any hints?",
    "Thanks, that explanation helped a lot.",
    "Same question here, following this thread.",
    "The course handout has a worked example near the end.",
    "You can find the schedule on the course home page.",
)


def enrollment(
    user: UserData, state: Enrollment, created_by: UserData | None
) -> CourseEnrollmentData:
    """The ``CourseEnrollmentData`` of an enrollment in its current state."""
    return CourseEnrollmentData(
        user=user,
        course=state.course.data,
        mode=state.mode,
        is_active=state.active,
        creation_date=state.created,
        created_by=created_by,
    )


def grade(learner: Learner, state: Enrollment, moment: datetime) -> PersistentCourseGradeData:
    """The learner's stored course grade after a change at ``moment``.

    The letter grade is empty below the pass mark, as edx-platform computes it. edx-platform
    leaves ``passed_timestamp`` NULL until the learner passes, which the event's Avro schema
    cannot carry; below the pass mark the demo sends the time of the change instead.
    """
    course = state.course
    return PersistentCourseGradeData(
        user_id=learner.user.id,
        course=course.data,
        course_edited_timestamp=course.edited,
        course_version=course.version,
        grading_policy_hash=course.grading_policy_hash,
        percent_grade=state.percent,
        letter_grade=course.letter_grade(state.percent),
        passed_timestamp=state.passed_at or moment,
    )


def certificate(learner: Learner, state: Enrollment, status: str, previous: str) -> CertificateData:
    """The learner's certificate of the course, with its current and previous status."""
    return CertificateData(
        user=learner.user,
        course=state.course.data,
        mode=state.mode,
        grade=str(state.percent),
        download_url=state.certificate_url,
        name=learner.user.pii.name,
        current_status=status,
        previous_status=previous,
    )


def new_thread(rng: random.Random, course: Course, thread_id: str, moment: datetime) -> Thread:
    """A thread started at ``moment`` in a random topic of ``course``."""
    commentable_id, topic = rng.choice(course.topics)
    url = (
        f"https://{HOST}/courses/{course.key}/discussion/forum/{commentable_id}/threads/{thread_id}"
    )
    return Thread(thread_id, moment, commentable_id, topic, rng.choice(THREAD_TITLES), url)


def post(
    rng: random.Random, learner: Learner, course: Course, thread: Thread, post_id: str
) -> DiscussionThreadData:
    """A forum post: the thread itself when ``post_id`` is its id, else a response or comment."""
    opening = post_id == thread.id
    return DiscussionThreadData(
        body=rng.choice(POST_BODIES),
        commentable_id=thread.commentable_id,
        id=post_id,
        truncated=False,
        url=thread.url,
        user=learner.user,
        course_id=course.key,
        thread_type=rng.choice(("discussion", "question")) if opening else None,
        anonymous=False,
        anonymous_to_peers=False,
        title=thread.title if opening else None,
        title_truncated=False if opening else None,
        category_name=thread.topic,
        discussion=None if opening else {"id": thread.id},
        user_course_roles=[],
        user_forums_roles=["Student"],
        options={"followed": opening},
    )


def ledger_transaction(
    rng: random.Random, learner: Learner, customer: Customer, course: Course, moment: datetime
) -> LedgerTransaction:
    """A new learner-credit transaction paying for ``course`` (state ``created``)."""
    parent = f"{course.template.org}+{course.template.number}"
    return LedgerTransaction(
        uuid=random_uuid(rng),
        created=moment,
        modified=moment,
        idempotency_key=f"ledger-for-subsidy-{customer.subsidy}-{learner.user.id}-{parent}",
        quantity=-course.template.price_cents,
        state="created",
        ledger_uuid=customer.ledger,
        subsidy_access_policy_uuid=customer.policy,
        lms_user_id=learner.user.id,
        content_key=course.key,
        parent_content_key=parent,
    )


def reversal(
    rng: random.Random, transaction: LedgerTransaction, moment: datetime
) -> LedgerTransactionReversal:
    """The reversal of ``transaction`` (a refund after unenrollment), committed."""
    return LedgerTransactionReversal(
        uuid=random_uuid(rng),
        created=moment,
        modified=moment + timedelta(seconds=1),
        idempotency_key=f"{transaction.idempotency_key}-reversal",
        quantity=-transaction.quantity,
        state="committed",
    )


def redemption(learner: Learner, customer: Customer, course: Course) -> SubsidyRedemption:
    """The redemption of the customer's subsidy for ``course``."""
    return SubsidyRedemption(
        subsidy_identifier=str(customer.subsidy),
        content_key=str(course.key),
        lms_user_id=learner.user.id,
    )
