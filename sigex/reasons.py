"""Every reason code sigex gives, in one place.

A reason code travels in dead letters (the ``sigex-reasons`` header), in access
records and in the Publisher's and the policy's answers; auditors and dashboards
filter on it. It is part of the wire format: a member is never renamed or reused
for another meaning, only added. ``docs/policy.md`` (the policy's codes) and
``docs/architecture.md`` (the exchange's) explain each one; a unit test keeps
those tables and this enum in step.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why something was allowed, refused or dead-lettered; who gives it is in the docs."""

    # decide(): the policy's answer to one (sender, signal, recipient, purpose) question
    ALLOWED = "ALLOWED"
    UNKNOWN_SIGNAL = "UNKNOWN_SIGNAL"
    UNKNOWN_PARTY = "UNKNOWN_PARTY"
    UNKNOWN_PURPOSE = "UNKNOWN_PURPOSE"
    NO_AGREEMENT = "NO_AGREEMENT"
    SENDER_NOT_ALLOWED = "SENDER_NOT_ALLOWED"
    RECIPIENT_NOT_ALLOWED = "RECIPIENT_NOT_ALLOWED"
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    OUTSIDE_VALIDITY = "OUTSIDE_VALIDITY"
    BASIS_NOT_IN_FORCE = "BASIS_NOT_IN_FORCE"
    BASIS_UNDER_REVIEW = "BASIS_UNDER_REVIEW"
    COOPERATION_NOT_IN_FORCE = "COOPERATION_NOT_IN_FORCE"
    CLASSIFICATION_NOT_ALLOWED = "CLASSIFICATION_NOT_ALLOWED"
    SENDER_NOT_IN_FIELD = "SENDER_NOT_IN_FIELD"

    # route(): the recipients a record names
    NO_RECIPIENT = "NO_RECIPIENT"

    # the gateway, on what actually arrived
    NO_LAWFUL_RECIPIENT = "NO_LAWFUL_RECIPIENT"
    ENVELOPE_INVALID = "ENVELOPE_INVALID"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    NOT_AN_INGRESS_TOPIC = "NOT_AN_INGRESS_TOPIC"
    UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"
    INVALID_RECORD = "INVALID_RECORD"
    REPLAYED = "REPLAYED"
    MESSAGE_ID_REUSED = "MESSAGE_ID_REUSED"
    RECIPIENT_KEY_UNAVAILABLE = "RECIPIENT_KEY_UNAVAILABLE"
    GATEWAY_ERROR = "GATEWAY_ERROR"
    DELIVERY_FAILED = "DELIVERY_FAILED"

    # the subscriber, on what it received
    ACCEPTED = "ACCEPTED"
    PURPOSE_NOT_DECLARED = "PURPOSE_NOT_DECLARED"
    NOT_FOR_THIS_PARTY = "NOT_FOR_THIS_PARTY"
    POLICY_DISAGREES = "POLICY_DISAGREES"
