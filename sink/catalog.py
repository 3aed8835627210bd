"""The event catalog: the one list of event types the sink consumes.

Each :class:`EventSpec` says which payload class an event type carries, under which key of the
event's data dict, and which table stores it. Tables are per payload class: every event type
carrying, say, :class:`~sink.events.CertificateData` writes to ``learning_certificate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from sink import events
from sink.errors import UnknownEventTypeError


@attrs.frozen
class EventSpec:
    """What the sink knows about one event type.

    Attributes:
        event_type: Versioned reverse-DNS event type, the ``ce_type`` header
            (e.g. ``org.openedx.learning.course.enrollment.created.v1``).
        data_key: The single key of the event's data dict (e.g. ``enrollment``).
        data_class: The attrs payload class stored under ``data_key``.
        table: Warehouse table of that payload class.
    """

    event_type: str
    data_key: str
    data_class: type[Any]
    table: str

    @property
    def subdomain(self) -> str:
        """The openedx-events subdomain, e.g. ``learning`` for ``org.openedx.learning.*``."""
        return self.event_type.split(".")[2]


def _family(data_class: type[Any], data_key: str, table: str, *names: str) -> tuple[EventSpec, ...]:
    """The specs of every event type carrying ``data_class``.

    ``names`` are the event names between the subdomain and the version: ``badge.awarded`` in
    ``org.openedx.learning.badge.awarded.v1``. The subdomain is the name of the class's module.
    """
    subdomain = data_class.__module__.rsplit(".", 1)[-1]
    return tuple(
        EventSpec(f"org.openedx.{subdomain}.{name}.v1", data_key, data_class, table)
        for name in names
    )


_FAMILIES: tuple[tuple[EventSpec, ...], ...] = (
    _family(
        events.UserData,
        "user",
        "learning_user",
        "student.registration.completed",
        "auth.session.login.completed",
    ),
    _family(
        events.CourseEnrollmentData,
        "enrollment",
        "learning_course_enrollment",
        "course.enrollment.created",
        "course.enrollment.changed",
        "course.unenrollment.completed",
    ),
    _family(
        events.CertificateData,
        "certificate",
        "learning_certificate",
        "certificate.created",
        "certificate.changed",
        "certificate.revoked",
    ),
    _family(
        events.ProgramCertificateData,
        "program_certificate",
        "learning_program_certificate",
        "program.certificate.awarded",
        "program.certificate.revoked",
    ),
    _family(events.CohortData, "cohort", "learning_cohort", "cohort_membership.changed"),
    _family(
        events.CourseDiscussionConfigurationData,
        "configuration",
        "learning_course_discussion_configuration",
        "discussions.configuration.changed",
    ),
    _family(
        events.PersistentCourseGradeData,
        "grade",
        "learning_persistent_course_grade",
        "course.persistent_grade_summary.changed",
    ),
    _family(
        events.XBlockSkillVerificationData,
        "xblock_info",
        "learning_xblock_skill_verification",
        "xblock.skill.verified",
    ),
    _family(
        events.UserNotificationData,
        "notification_data",
        "learning_user_notification",
        "user.notification.requested",
    ),
    _family(
        events.ExamAttemptData,
        "exam_attempt",
        "learning_exam_attempt",
        "exam.attempt.submitted",
        "exam.attempt.rejected",
        "exam.attempt.verified",
        "exam.attempt.errored",
        "exam.attempt.reset",
    ),
    _family(
        events.CourseAccessRoleData,
        "course_access_role_data",
        "learning_course_access_role",
        "user.course_access_role.added",
        "user.course_access_role.removed",
    ),
    _family(
        events.DiscussionThreadData,
        "thread",
        "learning_discussion_thread",
        "forum.thread.created",
        "forum.thread.response.created",
        "forum.thread.response.comment.created",
    ),
    _family(
        events.CourseNotificationData,
        "course_notification_data",
        "learning_course_notification",
        "course.notification.requested",
    ),
    _family(
        events.ORASubmissionData,
        "submission",
        "learning_ora_submission",
        "ora.submission.created",
    ),
    _family(
        events.CoursePassingStatusData,
        "course_passing_status",
        "learning_course_passing_status",
        "course.passing.status.updated",
    ),
    _family(
        events.CcxCoursePassingStatusData,
        "course_passing_status",
        "learning_ccx_course_passing_status",
        "ccx.course.passing.status.updated",
    ),
    _family(events.BadgeData, "badge", "learning_badge", "badge.awarded", "badge.revoked"),
    _family(
        events.VerificationAttemptData,
        "idv_attempt",
        "learning_verification_attempt",
        "idv_attempt.created",
        "idv_attempt.pending",
        "idv_attempt.approved",
        "idv_attempt.denied",
    ),
    _family(
        events.ExternalGraderScoreData,
        "score",
        "learning_external_grader_score",
        "external_grader.score.submitted",
    ),
    _family(
        events.LtiProviderLaunchData,
        "launch_data",
        "learning_lti_provider_launch",
        "lti_provider.launch.success",
    ),
    _family(
        events.TrackingLogData,
        "tracking_log",
        "analytics_tracking_log",
        "tracking.event.emitted",
    ),
    _family(
        events.SubsidyRedemption,
        "redemption",
        "enterprise_subsidy_redemption",
        "subsidy.redeemed",
        "subsidy.redemption-reversed",
    ),
    _family(
        events.LedgerTransaction,
        "ledger_transaction",
        "enterprise_ledger_transaction",
        "subsidy_ledger_transaction.created",
        "subsidy_ledger_transaction.committed",
        "subsidy_ledger_transaction.failed",
        "subsidy_ledger_transaction.reversed",
    ),
    _family(
        events.LearnerCreditEnterpriseCourseEnrollment,
        "learner_credit_course_enrollment",
        "enterprise_learner_credit_course_enrollment",
        "learner_credit_course_enrollment.revoked",
    ),
    _family(
        events.EnterpriseGroup,
        "enterprise_group",
        "enterprise_group",
        "enterprise_group.deleted",
    ),
)

#: Every event type in scope, in catalog order (grouped by payload class).
SPECS: tuple[EventSpec, ...] = tuple(spec for family in _FAMILIES for spec in family)

_BY_EVENT_TYPE: Mapping[str, EventSpec] = MappingProxyType({s.event_type: s for s in SPECS})


def spec_for(event_type: str) -> EventSpec:
    """Return the spec of ``event_type``.

    Raises:
        UnknownEventTypeError: The sink does not consume this event type.
    """
    try:
        return _BY_EVENT_TYPE[event_type]
    except KeyError:
        raise UnknownEventTypeError(f"unknown event type {event_type!r}") from None


def all_specs() -> tuple[EventSpec, ...]:
    """Every event spec, in the catalog's stable order."""
    return SPECS


def event_types() -> tuple[str, ...]:
    """Every event type in scope, in the catalog's stable order."""
    return tuple(_BY_EVENT_TYPE)
