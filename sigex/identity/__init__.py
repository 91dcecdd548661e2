"""Party identity: keys and certificates of each party and the operator-signed party directory."""

from sigex.identity.directory import (
    PartyDirectory,
    PartyEntry,
    PublicKeyRecord,
    parse_directory,
    sign_directory,
)
from sigex.identity.errors import DirectoryError, IdentityError, NoValidKey, UnknownParty
from sigex.identity.federation import (
    PartyIdentity,
    PartySpec,
    default_state_dir,
    init_federation,
    load_directory,
    load_party,
    load_pseudonym_key,
    read_parties,
    rotate_party,
)

__all__ = [
    "DirectoryError",
    "IdentityError",
    "NoValidKey",
    "PartyDirectory",
    "PartyEntry",
    "PartyIdentity",
    "PartySpec",
    "PublicKeyRecord",
    "UnknownParty",
    "default_state_dir",
    "init_federation",
    "load_directory",
    "load_party",
    "load_pseudonym_key",
    "parse_directory",
    "read_parties",
    "rotate_party",
    "sign_directory",
]
