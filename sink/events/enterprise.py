"""Payload classes of the ``enterprise`` subdomain (``org.openedx.enterprise.*`` events).

Mirrors ``openedx_events.enterprise.data`` (release 11.2.0) field for field, inheritance included;
see :mod:`sink.events.learning` for the conventions.
"""

from datetime import datetime
from uuid import UUID

import attrs
from opaque_keys.edx.keys import CourseKey


@attrs.frozen
class SubsidyRedemption:
    """A redemption of an enterprise subsidy.

    Attributes:
        subsidy_identifier: Identifier of the subsidy applied.
        content_key: Content the subsidy was spent on.
        lms_user_id: LMS user id of the beneficiary.
    """

    subsidy_identifier: str
    content_key: str
    lms_user_id: int


@attrs.frozen
class BaseLedgerTransaction:
    """The fields every ``openedx_ledger`` record shares.

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        idempotency_key: Client-chosen key that makes the operation idempotent.
        quantity: Units of value moved (e.g. USD cents).
        state: Lifecycle state (``created``, ``pending``, ``committed``, ``failed``).
    """

    uuid: UUID
    created: datetime
    modified: datetime
    idempotency_key: str
    quantity: int
    state: str


@attrs.frozen
class LedgerTransactionReversal(BaseLedgerTransaction):
    """An ``openedx_ledger`` reversal: the undoing of a transaction (unenrollment, refund).

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        idempotency_key: Client-chosen key that makes the operation idempotent.
        quantity: Units of value moved back.
        state: Lifecycle state.
    """


@attrs.frozen
class LedgerTransaction(BaseLedgerTransaction):
    """An ``openedx_ledger`` transaction: value moving into or out of a ledger.

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        idempotency_key: Client-chosen key that makes the operation idempotent.
        quantity: Units of value moved (e.g. USD cents).
        state: Lifecycle state.
        ledger_uuid: The ledger the transaction belongs to.
        subsidy_access_policy_uuid: The access policy the transaction was made under.
        lms_user_id: LMS user id of the learner concerned.
        content_key: Course run the transaction is for.
        parent_content_key: Course (not run) key, if known.
        fulfillment_identifier: Identifier of the learner's subsidized enrollment, if any.
        reversal: The reversal of this transaction, if any.
    """

    ledger_uuid: UUID
    subsidy_access_policy_uuid: UUID
    lms_user_id: int
    content_key: CourseKey
    parent_content_key: str | None = None
    fulfillment_identifier: str | None = None
    reversal: LedgerTransactionReversal | None = None


@attrs.frozen
class EnterpriseCustomerUser:
    """A learner linked to an enterprise customer.

    Attributes:
        id: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        enterprise_customer_uuid: The enterprise customer the learner is linked to.
        user_id: LMS user id of the learner.
        active: Whether this is the learner's active enterprise.
        linked: Whether the learner is linked to the customer.
        is_relinkable: Whether the learner may be linked again.
        should_inactivate_other_customers: Whether saving deactivates the learner's other links.
        invite_key: Invite key the learner was linked with, if any.
    """

    id: int
    created: datetime
    modified: datetime
    enterprise_customer_uuid: UUID
    user_id: int
    active: bool
    linked: bool
    is_relinkable: bool
    should_inactivate_other_customers: bool
    invite_key: UUID | None = None


@attrs.frozen
class EnterpriseCourseEnrollment:
    """An enterprise learner's enrollment in a course.

    Attributes:
        id: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        enterprise_customer_user: The enrolled enterprise learner.
        course_id: Key of the course.
        saved_for_later: Whether the learner saved the course for later.
        source_slug: Where the enrollment came from, if known.
        unenrolled: Whether the LMS enrollment was unenrolled, if known.
        unenrolled_at: When it was unenrolled, if it was.
    """

    id: int
    created: datetime
    modified: datetime
    enterprise_customer_user: EnterpriseCustomerUser
    course_id: CourseKey
    saved_for_later: bool
    source_slug: str | None = None
    unenrolled: bool | None = None
    unenrolled_at: datetime | None = None


@attrs.frozen
class BaseEnterpriseFulfillment:
    """The fields every enterprise fulfillment source shares.

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        fulfillment_type: Kind of subsidy (``license``, ``learner_credit``, ``coupon_code``).
        is_revoked: Whether the subsidy was revoked.
        enterprise_course_entitlement_uuid: The course entitlement subsidized, if any.
        enterprise_course_enrollment: The course enrollment subsidized, if any.
    """

    uuid: UUID
    created: datetime
    modified: datetime
    fulfillment_type: str
    is_revoked: bool
    enterprise_course_entitlement_uuid: UUID | None = None
    enterprise_course_enrollment: EnterpriseCourseEnrollment | None = None


@attrs.frozen
class LearnerCreditEnterpriseCourseEnrollment(BaseEnterpriseFulfillment):
    """An enrollment fulfilled with enterprise learner credit.

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        fulfillment_type: Kind of subsidy.
        is_revoked: Whether the subsidy was revoked.
        enterprise_course_entitlement_uuid: The course entitlement subsidized, if any.
        enterprise_course_enrollment: The course enrollment subsidized, if any.
        transaction_id: The ledger transaction paying for it, if known.
    """

    transaction_id: UUID | None = None


@attrs.frozen
class LicensedEnterpriseCourseEnrollment(BaseEnterpriseFulfillment):
    """An enrollment fulfilled with an enterprise subscription license.

    Attributes:
        uuid: Primary identifier of the record.
        created: When the record was created.
        modified: When the record was last modified.
        fulfillment_type: Kind of subsidy.
        is_revoked: Whether the subsidy was revoked.
        enterprise_course_entitlement_uuid: The course entitlement subsidized, if any.
        enterprise_course_enrollment: The course enrollment subsidized, if any.
        license_uuid: The license used, if known.
    """

    license_uuid: UUID | None = None


@attrs.frozen
class EnterpriseGroup:
    """An enterprise group (only its identity travels on the bus).

    Attributes:
        uuid: Primary identifier of the record.
    """

    uuid: UUID
