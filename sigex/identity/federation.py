"""A development federation on disk: the CA, the operator key, every party's keys and the directory.

Layout under ``<state_dir>/federation/`` (folders 0700, private keys 0600)::

    ca.pem, ca.key                 the federation CA (ECDSA P-256)
    operator.key, operator.pub     Ed25519 key that signs the party directory
    pseudonym.key                  32 random bytes: the HMAC key of record-key pseudonyms
    directory.json                 the signed party directory
    parties/<CODE>/signing.key     Ed25519 (PKCS#8 PEM)
    parties/<CODE>/encryption.key  X25519 (PKCS#8 PEM)
    parties/<CODE>/tls.key, tls.pem, client.pem   TLS client identity (client.pem: key, cert, CA);
                                   its subject names the party's key generation (a revocation
                                   issues a new one with the next generation)
    parties/<CODE>/retired/        keys replaced by a rotation, kept to read old data until
                                   their destruction date (then ``shred_keys`` destroys them)
    parties/AUDIT/pseudonym.key    the audit pseudonym key (see ``sigex.identity.audit_files``)
    parties/AUDIT/api.pem, api.key the audit API's TLS server certificate
    broker/keystore.pem            broker server identity (key, cert, CA) for ssl.keystore.type=PEM
    broker/truststore.pem          the CA, for ssl.truststore.type=PEM
    admin/                         the ADMIN client identity used for provisioning
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import yaml

import sigex.config
from sigex.clock import Clock
from sigex.config import federation_dir
from sigex.identifiers import check_oin
from sigex.identity import _primitives as primitives
from sigex.identity.audit_files import (
    AUDIT_API_CERTIFICATE,
    AUDIT_PSEUDONYM_KEY,
    write_audit_api_identity,
    write_audit_pseudonym_key,
)
from sigex.identity.directory import (
    FIRST_GENERATION,
    PartyDirectory,
    PartyEntry,
    PublicKeyRecord,
    parse_directory,
    sign_directory,
)
from sigex.identity.errors import DirectoryError, IdentityError, UnknownParty
from sigex.identity.keyfiles import check_private, read_private, shred, write_private
from sigex.roles import Role

KEY_VALIDITY = timedelta(days=365)
CA_VALIDITY = timedelta(days=3650)
TLS_VALIDITY = timedelta(days=365)
#: certificates start a little in the past so small clock differences between hosts do not matter
BACKDATE = timedelta(minutes=5)
PSEUDONYM_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class PartySpec:
    """A party as the parties file describes it."""

    code: str
    name: str
    oin: str
    kind: str


@dataclass(frozen=True, slots=True)
class PartyIdentity:
    """Everything one party needs to act: its private keys and the paths of its TLS files."""

    code: str
    oin: str
    signing_key: primitives.Ed25519PrivateKey = field(repr=False)
    encryption_key: primitives.X25519PrivateKey = field(repr=False)
    retired_encryption_keys: tuple[primitives.X25519PrivateKey, ...] = field(repr=False)
    #: TLS files; None only for the in-memory test identities of ``sigex.identity.testing``
    tls_key: Path | None
    tls_certificate: Path | None
    client_pem: Path | None
    ca_certificate: Path | None

    @property
    def signing_key_id(self) -> bytes:
        return primitives.key_id(primitives.raw_public_signing(self.signing_key))

    @property
    def encryption_key_id(self) -> bytes:
        return primitives.key_id(primitives.raw_public_encryption(self.encryption_key))


@dataclass(frozen=True, slots=True)
class InitResult:
    federation: Path
    created: bool
    parties: tuple[str, ...]
    #: files an existing federation lacked and ``init`` added (the audit service's)
    added: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class ShreddedKey:
    """One retired encryption key destroyed by :func:`shred_keys`."""

    party: str
    key_id: bytes
    destroy_after: datetime
    destroyed_at: datetime


#: The longest retention of the data sealed to a party's encryption keys.
RetentionOf = Callable[[str], timedelta]


def default_state_dir() -> Path:
    """SIGEX_STATE_DIR when set, else the default of :func:`sigex.config.default_state_dir`."""
    configured = os.environ.get("SIGEX_STATE_DIR")
    return Path(configured) if configured else sigex.config.default_state_dir()


def default_parties_file() -> Path:
    """``policies/parties.yaml`` in the working directory, else beside the installed package."""
    local = Path("policies") / "parties.yaml"
    if local.is_file():
        return local
    spec = importlib.util.find_spec("sigex.policies")  # located, not imported
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "parties.yaml"
            if candidate.is_file():
                return candidate
    raise IdentityError("no parties file found; pass --parties")


def read_parties(path: Path) -> tuple[PartySpec, ...]:
    """Read code, name, oin and kind of every party from a parties YAML file."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise IdentityError(f"cannot read the parties file {str(path)!r}") from error
    entries = loaded.get("parties") if isinstance(loaded, dict) else None
    if not isinstance(entries, list):
        raise IdentityError("the parties file has no 'parties' list")
    specs = []
    for entry in entries:
        if not isinstance(entry, dict) or not all(k in entry for k in ("code", "name", "oin")):
            raise IdentityError("a party in the parties file lacks code, name or oin")
        code = str(entry["code"])
        if not code.isascii() or not code.isalnum() or code.upper() != code:
            raise IdentityError(f"party code {code!r} must be upper-case letters and digits")
        specs.append(
            PartySpec(
                code=code,
                name=str(entry["name"]),
                oin=check_oin(str(entry["oin"]), field="oin"),
                kind=str(entry.get("kind", "authority")),
            )
        )
    return tuple(specs)


# --- writing files ----------------------------------------------------------------------------


def _empty(folder: Path) -> None:
    """Remove what ``folder`` holds and keep the folder (it may be a mount point)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _make_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write(path: Path, content: bytes, *, private: bool) -> None:
    if private:
        write_private(path, content)
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    path.chmod(0o644)


def _inside_git_work_tree(path: Path) -> bool:
    resolved = path.resolve()
    return any((parent / ".git").exists() for parent in (resolved, *resolved.parents))


# --- creating a federation --------------------------------------------------------------------


def init_federation(
    state_dir: Path,
    parties: Sequence[PartySpec],
    clock: Clock,
    *,
    force: bool = False,
    broker_hosts: Sequence[str] = (),
    new_pseudonym_key: bool = False,
) -> InitResult:
    """Create the CA, the operator key, every party's keys and the signed directory.

    The broker certificate names ``localhost``, ``127.0.0.1`` and each of
    ``broker_hosts`` (for example ``kafka`` when clients reach it by that name).

    It also makes the audit service's pseudonym key and the audit API's server
    certificate (same names). Without ``force`` an existing federation is kept
    (``created`` is False); a missing API certificate is added (``added``), but
    a missing pseudonym key is an error unless ``new_pseudonym_key``: records
    already in the access log carry pseudonyms of the lost key, so it must be
    restored from the backup, not replaced. Refuses a state directory inside a
    git work tree, so secrets are never committed.
    """
    state_dir = Path(state_dir)
    root = federation_dir(state_dir)
    if _inside_git_work_tree(state_dir):
        raise IdentityError("the state directory is inside a git work tree; choose one outside it")
    if (root / "directory.json").exists() and not force:
        codes = load_directory(state_dir).codes
        added = _add_missing_audit_files(root, clock.now(), broker_hosts, new_pseudonym_key)
        return InitResult(root, created=False, parties=codes, added=added)
    if root.exists():
        _empty(root)  # not rmtree: in a container the folder is a volume's mount point
    _make_dir(state_dir)
    _make_dir(root)
    now = clock.now()

    ca_key = primitives.new_tls_key()
    ca_cert = primitives.ca_certificate(
        ca_key,
        primitives.party_name("SIGEXCA", "sigex development federation", None),
        now - BACKDATE,
        now + CA_VALIDITY,
    )
    _write(root / "ca.key", primitives.private_pem(ca_key), private=True)
    _write(root / "ca.pem", primitives.certificate_pem(ca_cert), private=False)

    _write(root / "pseudonym.key", os.urandom(PSEUDONYM_KEY_BYTES), private=True)

    operator = primitives.new_signing_key()
    _write(root / "operator.key", primitives.private_pem(operator), private=True)
    _write(root / "operator.pub", primitives.public_pem(operator.public_key()), private=False)

    entries = []
    for spec in parties:
        folder = root / "parties" / spec.code
        _make_dir(folder.parent)
        _make_dir(folder)
        signing, encryption = _write_party_keys(folder)
        _write_tls_identity(
            folder, spec.code, spec.name, spec.oin, ca_key, ca_cert, now, FIRST_GENERATION
        )
        entries.append(
            PartyEntry(
                code=spec.code,
                name=spec.name,
                oin=spec.oin,
                kind=spec.kind,
                signing_keys=(_record(primitives.raw_public_signing(signing), now),),
                encryption_keys=(_record(primitives.raw_public_encryption(encryption), now),),
                generation=FIRST_GENERATION,
            )
        )
    _make_dir(root / "admin")
    _write_tls_identity(
        root / "admin", Role.ADMIN, "sigex administration", None, ca_key, ca_cert, now
    )
    _write_broker_identity(root / "broker", ca_key, ca_cert, now, broker_hosts)
    _make_dir(root / "parties")
    write_audit_pseudonym_key(root)
    write_audit_api_identity(root, ca_key, ca_cert, now, broker_hosts)

    directory = PartyDirectory(issued_at=now, parties=tuple(entries))
    _write(root / "directory.json", sign_directory(directory, operator), private=False)
    return InitResult(root, created=True, parties=directory.codes)


def _add_missing_audit_files(
    root: Path, now: datetime, broker_hosts: Sequence[str], new_pseudonym_key: bool
) -> tuple[Path, ...]:
    """Give a federation made before the audit files were part of ``init`` what it lacks."""
    added: list[Path] = []
    if not (root / AUDIT_API_CERTIFICATE).exists():
        try:
            ca_key = primitives.load_tls_key(read_private(root / "ca.key"))
            ca_cert = primitives.load_certificate((root / "ca.pem").read_bytes())
        except (OSError, primitives.CryptoFailure) as error:
            raise IdentityError("the federation CA cannot be read") from error
        added.extend(write_audit_api_identity(root, ca_key, ca_cert, now, broker_hosts))
    pseudonym_key = root / AUDIT_PSEUDONYM_KEY
    if not pseudonym_key.exists():
        if not new_pseudonym_key:
            raise IdentityError(
                f"the federation has no audit pseudonym key {pseudonym_key}: restore it from"
                " the federation backup; only if this federation never had one, run"
                " 'sigex keys init --new-pseudonym-key'"
            )
        added.append(write_audit_pseudonym_key(root))
    return tuple(added)


def _record(raw_public: bytes, now: datetime) -> PublicKeyRecord:
    return PublicKeyRecord(
        key_id=primitives.key_id(raw_public),
        public_key=raw_public,
        not_before=now - BACKDATE,
        not_after=now + KEY_VALIDITY,
    )


def _write_party_keys(
    folder: Path,
) -> tuple[primitives.Ed25519PrivateKey, primitives.X25519PrivateKey]:
    signing = primitives.new_signing_key()
    encryption = primitives.new_encryption_key()
    _write(folder / "signing.key", primitives.private_pem(signing), private=True)
    _write(folder / "encryption.key", primitives.private_pem(encryption), private=True)
    return signing, encryption


def _write_tls_identity(
    folder: Path,
    code: str,
    name: str,
    oin: str | None,
    ca_key: primitives.TlsPrivateKey,
    ca_cert: primitives.Certificate,
    now: datetime,
    generation: int | None = None,
) -> None:
    """A TLS client identity; a party's names its key generation, the ADMIN one none."""
    key = primitives.new_tls_key()
    cert = primitives.leaf_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        key=key,
        name=primitives.party_name(code, name, oin, generation),
        not_before=now - BACKDATE,
        not_after=now + TLS_VALIDITY,
    )
    key_pem = primitives.private_pem(key)
    cert_pem = primitives.certificate_pem(cert)
    ca_pem = primitives.certificate_pem(ca_cert)
    _write(folder / "tls.key", key_pem, private=True)
    _write(folder / "tls.pem", cert_pem + ca_pem, private=False)
    _write(folder / "client.pem", key_pem + cert_pem + ca_pem, private=True)


def _write_broker_identity(
    folder: Path,
    ca_key: primitives.TlsPrivateKey,
    ca_cert: primitives.Certificate,
    now: datetime,
    extra_hosts: Sequence[str],
) -> None:
    _make_dir(folder)
    hosts = ("localhost", *(h for h in extra_hosts if h != "localhost"))
    key = primitives.new_tls_key()
    cert = primitives.leaf_certificate(
        ca_key=ca_key,
        ca_cert=ca_cert,
        key=key,
        name=primitives.party_name(Role.BROKER, "sigex broker", None),
        not_before=now - BACKDATE,
        not_after=now + TLS_VALIDITY,
        server_names=hosts,
        server_ips=("127.0.0.1",),
    )
    ca_pem = primitives.certificate_pem(ca_cert)
    _write(
        folder / "keystore.pem",
        primitives.private_pem(key) + primitives.certificate_pem(cert) + ca_pem,
        private=True,
    )
    _write(folder / "truststore.pem", ca_pem, private=False)


# --- loading ----------------------------------------------------------------------------------


def load_directory(state_dir: Path, operator_public_key: bytes | None = None) -> PartyDirectory:
    """Load ``directory.json`` and check the operator's signature.

    The operator's public key comes from ``operator.pub`` unless given; raises
    :class:`~sigex.identity.errors.DirectoryError` when anything does not check out.
    """
    root = federation_dir(state_dir)
    try:
        document = (root / "directory.json").read_bytes()
        if operator_public_key is None:
            operator_public_key = primitives.load_verifying_key_pem(
                (root / "operator.pub").read_bytes()
            ).public_bytes_raw()
    except OSError as error:
        raise DirectoryError(
            "no party directory in the state directory; run 'sigex keys init'"
        ) from error
    except primitives.CryptoFailure as error:
        raise DirectoryError("the operator's public key file is malformed") from error
    return parse_directory(document, operator_public_key)


def load_party(state_dir: Path, code: str) -> PartyIdentity:
    """Load one party's private keys and TLS file paths; its OIN comes from the directory."""
    entry = load_directory(state_dir).party(code)
    root = federation_dir(state_dir)
    folder = root / "parties" / code
    if not folder.is_dir():
        raise UnknownParty(code)
    try:
        signing = primitives.load_signing_key(read_private(folder / "signing.key"))
        encryption = primitives.load_encryption_key(read_private(folder / "encryption.key"))
        retired = tuple(
            primitives.load_encryption_key(read_private(path))
            for path in sorted((folder / "retired").glob("encryption-*.key"))
        )
    except (OSError, primitives.CryptoFailure) as error:
        raise IdentityError(f"the keys of party {code!r} cannot be read") from error
    for tls_file in ("tls.key", "client.pem"):
        if (folder / tls_file).exists():
            check_private(folder / tls_file)
    return PartyIdentity(
        code=code,
        oin=entry.oin,
        signing_key=signing,
        encryption_key=encryption,
        retired_encryption_keys=retired,
        tls_key=folder / "tls.key",
        tls_certificate=folder / "tls.pem",
        client_pem=folder / "client.pem",
        ca_certificate=root / "ca.pem",
    )


def load_pseudonym_key(state_dir: Path) -> bytes:
    """The federation's pseudonymisation key (see ``sigex.envelope.pseudonym``)."""
    try:
        key = read_private(federation_dir(state_dir) / "pseudonym.key")
    except OSError as error:
        raise IdentityError("no pseudonym key in the state directory") from error
    if len(key) != PSEUDONYM_KEY_BYTES:
        raise IdentityError("the pseudonym key file is malformed")
    return key


# --- rotation and revocation ------------------------------------------------------------------


def rotate_party(
    state_dir: Path,
    code: str,
    clock: Clock,
    *,
    revoke: bool = False,
    retention: timedelta | None = None,
) -> PartyEntry:
    """Give ``code`` new signing and encryption keys; the old ones end now (or are revoked now).

    Ended keys keep verifying what they signed inside their period; revoked keys
    verify nothing from now on. Old encryption keys move to ``retired/`` so old
    data stays readable until their destruction date: the end of their period
    plus ``retention`` (the longest retention of data sealed to them), recorded
    in the directory for :func:`shred_keys`.

    A revocation also issues a new TLS certificate with the next key generation
    and lists that generation in the directory; the old certificate's broker
    principal loses its ACLs at the next ``sigex provision``.
    """
    root = federation_dir(state_dir)
    operator = _load_operator(root)
    directory = load_directory(state_dir)
    entry = directory.party(code)
    folder = root / "parties" / code
    now = clock.now()
    generation = entry.generation
    if revoke:
        generation += 1
        _reissue_tls_identity(root, folder, entry, now, generation)
    old_signing = primitives.load_signing_key(read_private(folder / "signing.key"))
    old_encryption = primitives.load_encryption_key(read_private(folder / "encryption.key"))
    _make_dir(folder / "retired")
    old_signing_id = primitives.key_id(primitives.raw_public_signing(old_signing))
    old_encryption_id = primitives.key_id(primitives.raw_public_encryption(old_encryption))
    (folder / "signing.key").rename(folder / "retired" / f"signing-{old_signing_id.hex()}.key")
    (folder / "encryption.key").rename(
        folder / "retired" / f"encryption-{old_encryption_id.hex()}.key"
    )
    signing, encryption = _write_party_keys(folder)

    def ended(record: PublicKeyRecord) -> PublicKeyRecord:
        if revoke and record.revoked_at is None:
            return replace(record, revoked_at=now)
        if record.not_after > now:
            return replace(
                record, not_after=max(now, record.not_before + timedelta(microseconds=1))
            )
        return record

    new_entry = replace(
        entry,
        generation=generation,
        signing_keys=(
            *(ended(r) for r in entry.signing_keys),
            _record_from(primitives.raw_public_signing(signing), now),
        ),
        encryption_keys=(
            *(_with_destruction_date(ended(r), retention) for r in entry.encryption_keys),
            _record_from(primitives.raw_public_encryption(encryption), now),
        ),
    )
    parties = tuple(new_entry if p.code == code else p for p in directory.parties)
    updated = PartyDirectory(issued_at=now, parties=parties)
    _write(root / "directory.json", sign_directory(updated, operator), private=False)
    return new_entry


def _with_destruction_date(record: PublicKeyRecord, retention: timedelta | None) -> PublicKeyRecord:
    """An ended encryption key's record with its destruction date, if it has none yet."""
    if retention is None or record.destroy_after is not None:
        return record
    return replace(record, destroy_after=record.not_after + retention)


def shred_keys(
    state_dir: Path,
    clock: Clock,
    retention_of: RetentionOf | None = None,
    *,
    parties: Sequence[str] | None = None,
) -> tuple[ShreddedKey, ...]:
    """Destroy every retired encryption key whose destruction date has passed.

    The key file in ``retired/`` is overwritten and removed, and the directory
    records ``destroyed_at`` (re-signed), so openers then refuse what was
    sealed to that key with :class:`~sigex.envelope.errors.KeyDestroyed`. A key
    retired without a destruction date gets the end of its period plus
    ``retention_of(party)``; without ``retention_of`` such a key is kept.
    The current encryption key of a party is never destroyed: rotate it first.
    Signing keys are not touched (old signatures must keep verifying).
    """
    root = federation_dir(state_dir)
    directory = load_directory(state_dir)
    now = clock.now()
    wanted = set(directory.codes if parties is None else parties)
    unknown = wanted - set(directory.codes)
    if unknown:
        raise UnknownParty(sorted(unknown)[0])
    shredded: list[ShreddedKey] = []
    entries: list[PartyEntry] = []
    for entry in directory.parties:
        if entry.code not in wanted:
            entries.append(entry)
            continue
        retired = root / "parties" / entry.code / "retired"
        current = _current_encryption_key_id(root / "parties" / entry.code)
        records: list[PublicKeyRecord] = []
        for record in entry.encryption_keys:
            due = record.destroy_after
            if due is None and retention_of is not None and record.not_after <= now:
                due = record.not_after + retention_of(entry.code)
            key_file = retired / f"encryption-{record.key_id.hex()}.key"
            if record.destroyed:
                shred(key_file)  # a run that stopped between recording and removing
                records.append(record)
            elif record.key_id != current and due is not None and due <= now:
                shred(key_file)
                records.append(replace(record, destroy_after=due, destroyed_at=now))
                shredded.append(ShreddedKey(entry.code, record.key_id, due, now))
            else:
                records.append(record)
        entries.append(replace(entry, encryption_keys=tuple(records)))
    if shredded:
        updated = PartyDirectory(issued_at=now, parties=tuple(entries))
        signed = sign_directory(updated, _load_operator(root))
        _write(root / "directory.json", signed, private=False)
    return tuple(shredded)


def _current_encryption_key_id(folder: Path) -> bytes | None:
    path = folder / "encryption.key"
    if not path.exists():
        return None
    try:
        key = primitives.load_encryption_key(read_private(path))
    except primitives.CryptoFailure as error:
        raise IdentityError(f"the encryption key {path} cannot be read") from error
    return primitives.key_id(primitives.raw_public_encryption(key))


def _reissue_tls_identity(
    root: Path, folder: Path, entry: PartyEntry, now: datetime, generation: int
) -> None:
    """Replace the party's TLS key and certificate with new ones of ``generation``.

    The old key is not kept: nothing needs it, and whoever holds a copy is who
    the revocation is against.
    """
    try:
        ca_key = primitives.load_tls_key(read_private(root / "ca.key"))
        ca_cert = primitives.load_certificate((root / "ca.pem").read_bytes())
    except (OSError, primitives.CryptoFailure) as error:
        raise IdentityError("the federation CA cannot be read") from error
    _write_tls_identity(folder, entry.code, entry.name, entry.oin, ca_key, ca_cert, now, generation)


def _record_from(raw_public: bytes, now: datetime) -> PublicKeyRecord:
    return PublicKeyRecord(
        key_id=primitives.key_id(raw_public),
        public_key=raw_public,
        not_before=now,
        not_after=now + KEY_VALIDITY,
    )


def _load_operator(root: Path) -> primitives.Ed25519PrivateKey:
    try:
        return primitives.load_signing_key(read_private(root / "operator.key"))
    except (OSError, primitives.CryptoFailure) as error:
        raise IdentityError("the operator key cannot be read") from error
