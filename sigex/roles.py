"""The exchange's own principals: the roles that act as parties beside the supervisors.

Each has its certificate in the federation (its CN is the value below) and takes part
in the exchange under that name: in ACLs, in the signed party directory, in envelopes
and in access records. The supervisors' codes (NLA, UWV, GM0363, ...) come from
``policies/parties.yaml``; these four are fixed by sigex itself.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A principal that is part of the exchange, not one of the supervisors."""

    #: provisions topics and ACLs; a super user of the brokers
    ADMIN = "ADMIN"
    #: the brokers' own certificate (inter-broker TLS); a super user
    BROKER = "BROKER"
    #: the policy gateway: reads ingress, signs its decisions, writes deliveries
    GATEWAY = "GATEWAY"
    #: the audit service: holds the pseudonym key, signs checkpoints, serves the audit API
    AUDIT = "AUDIT"
