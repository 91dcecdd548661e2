"""Party identity: keys and certificates of each party and the operator-signed party directory."""

from sigex.identity.directory import (
    PartyDirectory,
    PartyEntry,
    PublicKeyRecord,
    parse_directory,
    sign_directory,
)
from sigex.identity.errors import (
    DirectoryError,
    IdentityError,
    InsecureKeyFile,
    MissingKeyFile,
    NoValidKey,
    UnknownParty,
)
from sigex.identity.federation import (
    PartyIdentity,
    PartySpec,
    RetentionOf,
    ShreddedKey,
    default_state_dir,
    init_federation,
    load_directory,
    load_party,
    load_pseudonym_key,
    read_parties,
    rotate_party,
    shred_keys,
)

__all__ = [
    "DirectoryError",
    "IdentityError",
    "InsecureKeyFile",
    "MissingKeyFile",
    "NoValidKey",
    "PartyDirectory",
    "PartyEntry",
    "PartyIdentity",
    "PartySpec",
    "PublicKeyRecord",
    "RetentionOf",
    "ShreddedKey",
    "UnknownParty",
    "default_state_dir",
    "init_federation",
    "load_directory",
    "load_party",
    "load_pseudonym_key",
    "parse_directory",
    "read_parties",
    "rotate_party",
    "shred_keys",
    "sign_directory",
]
