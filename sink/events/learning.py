"""Payload classes of the ``learning`` subdomain (``org.openedx.learning.*`` events).

Each class mirrors the class of the same name in ``openedx_events.learning.data`` (release 11.2.0):
same field names, order, types and defaults, because the Avro schema on the wire is derived from
exactly those facts. Annotations are evaluated at import time (no postponed evaluation), so
``attrs.fields(cls)`` carries real types for schema derivation. A field whose default is ``None``
is annotated ``X | None``; upstream annotates it ``X``, the schema treats both as "nullable ``X``".
"""

from datetime import datetime

import attrs
from ccx_keys.locator import CCXLocator
from opaque_keys.edx.keys import CourseKey, UsageKey


@attrs.frozen
class UserNonPersonalData:
    """The part of a Django user that identifies no person.

    Attributes:
        id: Primary key of the Django ``User``.
        is_active: Whether the account is active.
    """

    id: int
    is_active: bool


@attrs.frozen
class UserPersonalData:
    """The personally identifying part of a Django user (PII).

    Attributes:
        username: Login name.
        email: E-mail address.
        name: Full name from the user's profile; empty when unknown.
    """

    username: str
    email: str
    name: str = attrs.field(factory=str)


@attrs.frozen
class UserData(UserNonPersonalData):
    """A Django user: the non-personal fields it inherits, plus its PII.

    Attributes:
        id: Primary key of the Django ``User`` (inherited).
        is_active: Whether the account is active (inherited).
        pii: Personally identifying data of the user.
    """

    pii: UserPersonalData


@attrs.frozen
class CourseData:
    """A course run, as summarised by the ``CourseOverview`` model.

    Attributes:
        course_key: Key of the course run.
        display_name: Title shown to learners; empty when unknown.
        start: When the course run starts, if set.
        end: When the course run ends, if set.
    """

    course_key: CourseKey
    display_name: str = attrs.field(factory=str)
    start: datetime | None = None
    end: datetime | None = None


@attrs.frozen
class CcxCourseData:
    """A Custom Course for edX (CCX) derived from a master course.

    Attributes:
        ccx_course_key: Key of the CCX course.
        master_course_key: Key of the course the CCX was derived from.
        display_name: Title of the CCX; empty when unknown.
        coach_email: E-mail address of the CCX coach; empty when unknown.
        start: Start date as free text (upstream sends a string, not a datetime), if set.
        end: End date as free text, if set.
        max_students_allowed: Enrollment cap, if any.
    """

    ccx_course_key: CCXLocator
    master_course_key: CourseKey
    display_name: str = attrs.field(factory=str)
    coach_email: str = attrs.field(factory=str)
    start: str | None = None
    end: str | None = None
    max_students_allowed: int | None = None


@attrs.frozen
class CourseEnrollmentData:
    """A learner's enrollment in a course run.

    Attributes:
        user: The enrolled learner.
        course: The course run.
        mode: Enrollment mode (``audit``, ``verified``, ...).
        is_active: Whether the enrollment is active.
        creation_date: When the enrollment was created.
        created_by: Who created the enrollment, when known.
    """

    user: UserData
    course: CourseData
    mode: str
    is_active: bool
    creation_date: datetime
    created_by: UserData | None = None


@attrs.frozen
class CertificateData:
    """A course certificate (the ``GeneratedCertificate`` model).

    Attributes:
        user: The certificate's learner.
        course: The course run the certificate is for.
        mode: Enrollment mode the certificate was earned in.
        grade: The learner's grade in the course run.
        download_url: Where the PDF certificate can be downloaded.
        name: The learner's name as printed.
        current_status: Status after the event.
        previous_status: Status before the event; empty when unknown.
    """

    user: UserData
    course: CourseData
    mode: str
    grade: str
    download_url: str
    name: str
    current_status: str
    previous_status: str = attrs.field(factory=str)


@attrs.frozen
class CohortData:
    """A learner's membership in a course cohort.

    Attributes:
        user: The learner placed in the cohort.
        course: The course run the cohort belongs to.
        name: Name of the cohort.
    """

    user: UserData
    course: CourseData
    name: str


@attrs.frozen
class DiscussionTopicContext:
    """Links a discussion topic's external id to where it lives in a course.

    Attributes:
        title: Cached title of the discussion topic.
        usage_key: Unit the topic is attached to, if any.
        group_id: Group the context is for, when a provider emulates cohorts this way.
        external_id: Commentable id used by the comments service, if any.
        ordering: Position of the topic, if set.
        context: Further structured context (section, subsection, ...).
    """

    title: str
    usage_key: UsageKey | None = None
    group_id: int | None = None
    external_id: str | None = None
    ordering: int | None = None
    context: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class CourseDiscussionConfigurationData:
    """How discussions are configured for a course.

    Upstream's default for ``plugin_configuration`` is the class ``dict`` itself (a bug: every
    instance built without it holds the type, not a mapping); an empty mapping is what is meant,
    so this class uses an empty-dict factory.

    Attributes:
        course_key: Key of the course.
        provider_type: Discussion provider chosen in the course settings.
        enabled: Whether discussions are enabled (new in openedx-events 11.1.0).
        enable_in_context: Whether in-context discussions are enabled (needs ``enabled``).
        enable_graded_units: Whether graded units get discussion topics too.
        unit_level_visibility: Whether discussions are visible at unit level.
        plugin_configuration: Provider plugin settings.
        contexts: Every context in which discussions are enabled.
    """

    course_key: CourseKey
    provider_type: str
    enabled: bool = True
    enable_in_context: bool = True
    enable_graded_units: bool = False
    unit_level_visibility: bool = False
    plugin_configuration: dict[str, bool] = attrs.field(factory=dict)
    contexts: list[DiscussionTopicContext] = attrs.field(factory=list)


@attrs.frozen
class PersistentCourseGradeData:
    """A learner's stored course grade (the ``PersistentCourseGrade`` model).

    Attributes:
        user_id: Id of the learner the grade belongs to.
        course: The course run graded.
        course_edited_timestamp: When the course was last edited.
        course_version: Version of the course content.
        grading_policy_hash: Hash of the grading policy used.
        percent_grade: Grade as a fraction.
        letter_grade: Grade as a letter.
        passed_timestamp: When the learner passed.
    """

    user_id: int
    course: CourseData
    course_edited_timestamp: datetime
    course_version: str
    grading_policy_hash: str
    percent_grade: float
    letter_grade: str
    passed_timestamp: datetime


@attrs.frozen
class XBlockSkillVerificationData:
    """A learner's feedback on which skills tagged on an XBlock are right.

    Attributes:
        usage_key: Key of the XBlock.
        verified_skills: Ids of the skills confirmed.
        ignored_skills: Ids of the skills rejected.
    """

    usage_key: UsageKey
    verified_skills: list[int] = attrs.field(factory=list)
    ignored_skills: list[int] = attrs.field(factory=list)


@attrs.frozen
class UserNotificationData:
    """A notification requested for a list of users.

    Attributes:
        user_ids: Ids of the users to notify.
        notification_type: Kind of notification.
        content_url: URL the notification points at.
        app_name: Name of the app sending it.
        course_key: Key of the course concerned.
        context: Further structured context for the notification.
    """

    user_ids: list[int]
    notification_type: str
    content_url: str
    app_name: str
    course_key: CourseKey
    context: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ProgramData:
    """A program from the course-discovery service.

    Attributes:
        uuid: Program UUID, as text.
        title: Program title.
        program_type: Program type slug (``professional``, ``micromasters``, ...).
    """

    uuid: str
    title: str
    program_type: str


@attrs.frozen
class ProgramCertificateData:
    """A program certificate (a ``UserCredential`` in the credentials service).

    Attributes:
        user: The learner holding the credential.
        program: The program the credential is for.
        uuid: UUID of the credential record, as text.
        status: Credential status (``awarded``, ``revoked``).
        url: Where the learner can see the credential.
        certificate_available_date: From when the learner may view it, if restricted.
    """

    user: UserData
    program: ProgramData
    uuid: str
    status: str
    url: str
    certificate_available_date: datetime | None = None


@attrs.frozen
class ExamAttemptData:
    """An attempt at a special (timed or proctored) exam, sent by edx-exams.

    Attributes:
        student_user: The learner taking the exam.
        course_key: Key of the course.
        usage_key: Key of the exam's content.
        exam_type: Kind of exam (``timed``, ``proctored``, ...).
        requesting_user: Who triggered the event (may be staff), when known.
    """

    student_user: UserData
    course_key: CourseKey
    usage_key: UsageKey
    exam_type: str
    requesting_user: UserData | None = None


@attrs.frozen
class CourseAccessRoleData:
    """A user's role in a course or organization.

    Attributes:
        user: The user holding the role.
        org_key: Organization key.
        course_key: Key of the course.
        role: Name of the role.
    """

    user: UserData
    org_key: str
    course_key: CourseKey
    role: str


@attrs.frozen
class DiscussionThreadData:
    """A forum thread, response or comment, as the forum tracking events describe it.

    Attributes:
        body: Text of the post.
        commentable_id: Id of the commentable the post belongs to.
        id: Id of the post (text since openedx-events 10.6.0).
        truncated: Whether the body was truncated.
        url: URL of the thread.
        user: Author of the post.
        course_id: Key of the course.
        thread_type: Kind of thread (``discussion``, ``question``), if known.
        anonymous: Whether the author is anonymous, if known.
        anonymous_to_peers: Whether the author is anonymous to peers, if known.
        title: Thread title, if any.
        title_truncated: Whether the title was truncated, if known.
        group_id: Id of the group, if any.
        team_id: Id of the team, if any.
        category_id: Id of the category, if any.
        category_name: Name of the category, if any.
        discussion: Discussion data of responses and comments, if any.
        user_course_roles: The author's course roles.
        user_forums_roles: The author's forum roles.
        options: Thread options.
    """

    body: str
    commentable_id: str
    id: str
    truncated: bool
    url: str
    user: UserData
    course_id: CourseKey
    thread_type: str | None = None
    anonymous: bool | None = None
    anonymous_to_peers: bool | None = None
    title: str | None = None
    title_truncated: bool | None = None
    group_id: int | None = None
    team_id: int | None = None
    category_id: int | None = None
    category_name: str | None = None
    discussion: dict[str, str] | None = None
    user_course_roles: list[str] = attrs.field(factory=list)
    user_forums_roles: list[str] = attrs.field(factory=list)
    options: dict[str, bool] = attrs.field(factory=dict)


@attrs.frozen
class CourseNotificationData:
    """A notification requested for an audience within a course.

    Attributes:
        course_key: Key of the course.
        app_name: Name of the app requesting it.
        notification_type: Kind of notification.
        content_url: URL the notification points at.
        content_context: Values for the notification's content template.
        audience_filters: Who gets it, by filter name (``enrollment``, ``role``, ...).
    """

    course_key: CourseKey
    app_name: str
    notification_type: str
    content_url: str
    content_context: dict[str, str] = attrs.field(factory=dict)
    audience_filters: dict[str, list[str]] = attrs.field(factory=dict)


@attrs.frozen
class ORASubmissionAnswer:
    """The answer of an Open Response Assessment submission: text parts and files.

    Attributes:
        parts: Response text parts.
        file_keys: Keys of the uploaded files.
        file_descriptions: Descriptions of the uploaded files.
        file_names: Names of the uploaded files.
        file_sizes: Sizes of the uploaded files.
        file_urls: URLs of the uploaded files.
    """

    parts: list[dict[str, str]] = attrs.field(factory=list)
    file_keys: list[str] = attrs.field(factory=list)
    file_descriptions: list[str] = attrs.field(factory=list)
    file_names: list[str] = attrs.field(factory=list)
    file_sizes: list[int] = attrs.field(factory=list)
    file_urls: list[str] = attrs.field(factory=list)


@attrs.frozen
class ORASubmissionData:
    """An Open Response Assessment submission.

    Attributes:
        uuid: Submission UUID, as text.
        anonymous_user_id: Anonymous id of the submitting learner.
        location: Location of the ORA block.
        attempt_number: Attempt number.
        created_at: When the submission was created.
        submitted_at: When it was submitted.
        answer: What was submitted.
    """

    uuid: str
    anonymous_user_id: str
    location: str
    attempt_number: int
    created_at: datetime
    submitted_at: datetime
    answer: ORASubmissionAnswer


@attrs.frozen
class CoursePassingStatusData:
    """Whether a learner's current grade passes a course run.

    Attributes:
        is_passing: Whether the grade is a pass.
        course: The course run.
        user: The learner.
    """

    is_passing: bool
    course: CourseData
    user: UserData


@attrs.frozen
class CcxCoursePassingStatusData(CoursePassingStatusData):
    """Whether a learner's current grade passes a CCX course.

    Redefining ``course`` moves it after the inherited fields: the order is
    ``is_passing, user, course``, and the Avro schema follows it.

    Attributes:
        is_passing: Whether the grade is a pass (inherited).
        user: The learner (inherited).
        course: The CCX course.
    """

    # Upstream narrows the field to an unrelated class; the schema needs exactly that.
    course: CcxCourseData  # type: ignore[assignment]


@attrs.frozen
class BadgeTemplateData:
    """The template a badge was issued from.

    Attributes:
        uuid: Template UUID, as text.
        origin: Kind of template.
        name: Badge name, if known.
        description: Badge description, if known.
        image_url: Badge image URL, if known.
    """

    uuid: str
    origin: str
    name: str | None = None
    description: str | None = None
    image_url: str | None = None


@attrs.frozen
class BadgeData:
    """A badge held by a learner.

    Attributes:
        uuid: Badge UUID, as text.
        user: The learner.
        template: The template the badge was issued from.
    """

    uuid: str
    user: UserData
    template: BadgeTemplateData


@attrs.frozen
class VerificationAttemptData:
    """An identity verification (IDV) attempt.

    Attributes:
        attempt_id: Id of the attempt.
        user: The user being verified.
        status: Status of the attempt.
        name: The name being verified, if known.
        expiration_date: When the verification expires, if known.
    """

    attempt_id: int
    user: UserData
    status: str
    name: str | None = None
    expiration_date: datetime | None = None


@attrs.frozen
class ExternalGraderScoreData:
    """A score returned by an external grader (XQueue) for a submission.

    Attributes:
        points_possible: Maximum score.
        points_earned: Score earned.
        course_id: Course id, as text.
        score_msg: Feedback message.
        submission_id: Id of the graded submission.
        user_id: Id of the submitting user, as text.
        module_id: Id of the graded problem.
        queue_key: Key of the submission in the queue.
        queue_name: Name of the queue.
    """

    points_possible: int
    points_earned: int
    course_id: str
    score_msg: str
    submission_id: int
    user_id: str
    module_id: str
    queue_key: str
    queue_name: str


@attrs.frozen
class LtiProviderLaunchParamsData:
    """The LTI parameters of a launch into Open edX content.

    Attributes:
        roles: Comma-separated LTI roles of the launching user.
        context_id: LTI launch context id.
        user_id: External (LTI) id of the launching user.
        extra_params: Other launch parameters.
    """

    roles: str
    context_id: str
    user_id: str
    extra_params: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class LtiProviderLaunchData:
    """A successful LTI launch into Open edX content.

    Attributes:
        user: The Open edX user launching.
        course_key: Key of the course the content belongs to.
        usage_key: Key of the launched content.
        launch_params: The LTI parameters of the launch.
    """

    user: UserData
    course_key: CourseKey
    usage_key: UsageKey
    launch_params: LtiProviderLaunchParamsData
