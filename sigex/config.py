"""Settings of a sigex process: typed, frozen and strict.

Settings come from environment variables named ``SIGEX_*`` and, optionally,
from a TOML file named by ``SIGEX_CONFIG_FILE`` whose top-level keys are the
setting names without the prefix, in lower case (``bootstrap``,
``metrics_port``). An environment variable wins over the file.

Strict means: an unknown ``SIGEX_*`` variable, an unknown file key or a value
that does not parse stops start-up with a :class:`~sigex.errors.ConfigurationError`
that names the variable (never its value, which may be a secret). Secrets are
wrapped in :class:`Secret`, whose ``repr`` and ``str`` show a mask.

Reading the settings does no network I/O; only the optional file and the
optional password file are read.
"""

from __future__ import annotations

import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from sigex.errors import ConfigurationError

PREFIX: Final = "SIGEX_"
MASK: Final = "********"

#: The federation CA, ``<state>/federation/ca.pem`` (written by ``sigex keys init``).
TLS_CA_FILE: Final = "ca.pem"
#: A party's TLS files in ``<state>/federation/parties/<PARTY>/`` (``admin/`` for ADMIN).
TLS_CERT_FILE: Final = "tls.pem"
TLS_KEY_FILE: Final = "tls.key"
ADMIN_PARTY: Final = "ADMIN"

#: Variables the test suite and the benchmarks read; allowed, but not settings of a service.
TEST_ONLY_VARIABLES: Final = frozenset(
    {
        "SIGEX_TEST_POSTGRES_DSN",
        "SIGEX_KAFKA_VERSION",
        "SIGEX_CACHE_DIR",
    }
)

_PARTY_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,31}$")
_GROUP_ID = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class Environment(StrEnum):
    """Where a process runs. Only the local environments may speak plaintext."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"

    @property
    def is_local(self) -> bool:
        return self in (Environment.DEVELOPMENT, Environment.TEST)


class Security(StrEnum):
    """How a client talks to the broker."""

    PLAINTEXT = "plaintext"
    MTLS = "mtls"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that must not appear in logs, reprs or ``config show``.

    ``shown`` is the safe form to display (a mask, or a DSN with its password
    masked); :meth:`reveal` returns the value itself.
    """

    _value: str = field(repr=False)
    shown: str = MASK

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.shown!r})"

    def __str__(self) -> str:
        return self.shown


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files a process presents to (and checks) the broker with."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings of one process. Build it with :func:`load_settings`."""

    env: Environment
    state_dir: Path
    bootstrap: tuple[BrokerAddress, ...]
    security: Security
    party: str | None
    tls_ca: Path | None
    tls_cert: Path | None
    tls_key: Path | None
    audit_db: Secret
    audit_db_password: Secret | None
    metrics_port: int
    health_port: int
    log_format: LogFormat
    log_level: str
    gateway_group: str
    policy_dir: Path | None
    audit_api_port: int
    config_file: Path | None

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ConfigurationError("SIGEX_BOOTSTRAP: at least one broker address is needed")
        if self.security is Security.PLAINTEXT and not self.env.is_local:
            raise ConfigurationError(
                "SIGEX_SECURITY: plaintext is allowed only when SIGEX_ENV is development or test"
            )

    @property
    def bootstrap_servers(self) -> str:
        """The bootstrap list as Kafka clients take it: ``host:port,host:port``."""
        return ",".join(str(address) for address in self.bootstrap)

    @property
    def federation_dir(self) -> Path:
        return self.state_dir / "federation"

    @property
    def uses_postgres(self) -> bool:
        return self.audit_db.reveal().startswith(("postgresql://", "postgres://"))

    def audit_dsn(self) -> Secret:
        """The access-log location with the password from the password file filled in."""
        location = self.audit_db.reveal()
        if self.audit_db_password is None or not self.uses_postgres:
            return self.audit_db
        parts = urlsplit(location)
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{quote(user, safe='')}:{quote(self.audit_db_password.reveal(), safe='')}@"
        netloc += f"[{host}]" if ":" in host else host
        filled = urlunsplit(parts._replace(netloc=netloc + port))
        return Secret(filled, shown=self.audit_db.shown)

    def require_tls(self) -> TlsFiles:
        """The TLS files, or a ConfigurationError naming the settings that are missing."""
        missing = [
            name
            for name, value in (
                ("SIGEX_TLS_CA", self.tls_ca),
                ("SIGEX_TLS_CERT", self.tls_cert),
                ("SIGEX_TLS_KEY", self.tls_key),
            )
            if value is None
        ]
        if missing or self.tls_ca is None or self.tls_cert is None or self.tls_key is None:
            raise ConfigurationError(
                f"{', '.join(missing)}: not set; set SIGEX_PARTY or these paths for mutual TLS"
            )
        return TlsFiles(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key)

    def describe(self) -> tuple[tuple[str, str], ...]:
        """Every setting by variable name with a displayable value; secrets stay masked."""

        def show(value: object) -> str:
            if value is None:
                return ""
            if isinstance(value, tuple):
                return ",".join(str(item) for item in value)
            return str(value)

        return (
            ("SIGEX_ENV", show(self.env)),
            ("SIGEX_STATE_DIR", show(self.state_dir)),
            ("SIGEX_BOOTSTRAP", show(self.bootstrap)),
            ("SIGEX_SECURITY", show(self.security)),
            ("SIGEX_PARTY", show(self.party)),
            ("SIGEX_TLS_CA", show(self.tls_ca)),
            ("SIGEX_TLS_CERT", show(self.tls_cert)),
            ("SIGEX_TLS_KEY", show(self.tls_key)),
            ("SIGEX_AUDIT_DB", show(self.audit_db)),
            ("SIGEX_AUDIT_DB_PASSWORD_FILE", MASK if self.audit_db_password else ""),
            ("SIGEX_METRICS_PORT", show(self.metrics_port)),
            ("SIGEX_HEALTH_PORT", show(self.health_port)),
            ("SIGEX_LOG_FORMAT", show(self.log_format)),
            ("SIGEX_LOG_LEVEL", show(self.log_level)),
            ("SIGEX_GATEWAY_GROUP", show(self.gateway_group)),
            ("SIGEX_POLICY_DIR", show(self.policy_dir)),
            ("SIGEX_AUDIT_API_PORT", show(self.audit_api_port)),
            ("SIGEX_CONFIG_FILE", show(self.config_file)),
        )


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One documented setting: its variable, its default in words, what it means."""

    variable: str
    default: str
    meaning: str


#: Every setting a service reads, in the order of docs/configuration.md.
SETTINGS: Final = (
    SettingSpec("SIGEX_ENV", "production", "development, test or production"),
    SettingSpec("SIGEX_STATE_DIR", "~/.local/state/sigex", "folder for keys and local state"),
    SettingSpec("SIGEX_BOOTSTRAP", "127.0.0.1:9092", "broker addresses, host:port,host:port"),
    SettingSpec(
        "SIGEX_SECURITY", "mtls (plaintext in development/test)", "mtls or plaintext (local only)"
    ),
    SettingSpec("SIGEX_PARTY", "(none)", "the party code this process acts as"),
    SettingSpec("SIGEX_TLS_CA", "<state>/federation/ca.pem", "the federation CA (PEM)"),
    SettingSpec("SIGEX_TLS_CERT", "<state>/federation/parties/<PARTY>/tls.pem", "certificate"),
    SettingSpec("SIGEX_TLS_KEY", "<state>/federation/parties/<PARTY>/tls.key", "private key"),
    SettingSpec("SIGEX_AUDIT_DB", "<state>/audit.sqlite", "SQLite path or postgresql:// DSN"),
    SettingSpec("SIGEX_AUDIT_DB_PASSWORD_FILE", "(none)", "file holding the database password"),
    SettingSpec("SIGEX_METRICS_PORT", "9464", "port of /metrics"),
    SettingSpec("SIGEX_HEALTH_PORT", "same as SIGEX_METRICS_PORT", "port of /livez and /readyz"),
    SettingSpec("SIGEX_LOG_FORMAT", "json (console in development/test)", "json or console"),
    SettingSpec("SIGEX_LOG_LEVEL", "WARNING", "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    SettingSpec("SIGEX_GATEWAY_GROUP", "sigex-gateway", "consumer group of the gateways"),
    SettingSpec("SIGEX_POLICY_DIR", "(the packaged policies)", "folder of the policy files"),
    SettingSpec("SIGEX_AUDIT_API_PORT", "8080", "port of the audit query API"),
    SettingSpec("SIGEX_CONFIG_FILE", "(none)", "optional TOML file with the same settings"),
)

KNOWN_VARIABLES: Final = frozenset(spec.variable for spec in SETTINGS)
#: Keys a TOML settings file may hold (the variable names without prefix, lower case).
FILE_KEYS: Final = frozenset(
    name.removeprefix(PREFIX).lower() for name in KNOWN_VARIABLES - {"SIGEX_CONFIG_FILE"}
)


def is_known_variable(name: str) -> bool:
    """True for every variable sigex reads, service settings and test-only variables alike."""
    return name in KNOWN_VARIABLES or name in TEST_ONLY_VARIABLES


# -- parsers: each takes the variable name (for the message) and the raw text --


def _parse_choice(kind: type[_E]) -> Callable[[str, str], _E]:
    def parse(name: str, raw: str) -> _E:
        try:
            return kind(raw.strip().lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ConfigurationError(f"{name}: must be one of {allowed}") from None

    return parse


def _parse_port(name: str, raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigurationError(f"{name}: must be a port number from 1 to 65535")
    return int(text)


def _parse_path(name: str, raw: str) -> Path:
    text = raw.strip()
    if not text or "\x00" in text:
        raise ConfigurationError(f"{name}: must be a path")
    return Path(text).expanduser()


def _parse_party(name: str, raw: str) -> str:
    text = raw.strip()
    if not _PARTY_CODE.match(text):
        raise ConfigurationError(f"{name}: must be a party code (capitals and digits, e.g. NLA)")
    return text


def _parse_bootstrap(name: str, raw: str) -> tuple[BrokerAddress, ...]:
    addresses: list[BrokerAddress] = []
    for item in raw.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not _HOST.match(host) or not port.isdigit():
            raise ConfigurationError(f"{name}: each address must be host:port")
        addresses.append(BrokerAddress(host.strip("[]"), _parse_port(name, port)))
    return tuple(addresses)


def _parse_log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in _LOG_LEVELS:
        raise ConfigurationError(f"{name}: must be one of {', '.join(_LOG_LEVELS)}")
    return level


def _parse_group(name: str, raw: str) -> str:
    text = raw.strip()
    if not _GROUP_ID.match(text):
        raise ConfigurationError(f"{name}: letters, digits, '.', '_' and '-' only")
    return text


def _mask_dsn(location: str) -> str:
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def _parse_audit_db(name: str, raw: str) -> Secret:
    text = raw.strip()
    if text.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(text)
            _ = parts.port
        except ValueError:
            raise ConfigurationError(f"{name}: not a valid postgresql:// DSN") from None
        if not parts.hostname and not parts.query:
            raise ConfigurationError(f"{name}: a postgresql:// DSN needs a host")
        return Secret(text, shown=_mask_dsn(text))
    if "://" in text:
        raise ConfigurationError(f"{name}: must be a SQLite file path or a postgresql:// DSN")
    path = _parse_path(name, text)
    return Secret(str(path), shown=str(path))


def _read_password_file(name: str, raw: str) -> Secret:
    path = _parse_path(name, raw)
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError:
        raise ConfigurationError(f"{name}: the file cannot be read") from None
    if not password:
        raise ConfigurationError(f"{name}: the file is empty")
    return Secret(password)


def _read_file(path: Path) -> dict[str, str]:
    """The TOML settings file as variable name -> raw text."""
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError:
        raise ConfigurationError("SIGEX_CONFIG_FILE: the file cannot be read") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"SIGEX_CONFIG_FILE: not valid TOML ({error})") from None
    values: dict[str, str] = {}
    for key, value in document.items():
        if key not in FILE_KEYS:
            raise ConfigurationError(f"SIGEX_CONFIG_FILE: unknown key {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigurationError(f"SIGEX_CONFIG_FILE: key {key!r} must be a string or number")
        values[PREFIX + key.upper()] = str(value)
    return values


def load_settings(environ: Mapping[str, str], *, home: Path | None = None) -> Settings:
    """Build the settings from ``environ`` (pass ``os.environ``) and the optional file.

    Raises :class:`ConfigurationError` naming the first unknown or malformed setting.
    """
    unknown = sorted(
        name for name in environ if name.startswith(PREFIX) and not is_known_variable(name)
    )
    if unknown:
        raise ConfigurationError(f"unknown setting {unknown[0]} (see docs/configuration.md)")

    config_file: Path | None = None
    raw: dict[str, str] = {}
    if environ.get("SIGEX_CONFIG_FILE"):
        config_file = _parse_path("SIGEX_CONFIG_FILE", environ["SIGEX_CONFIG_FILE"])
        raw.update(_read_file(config_file))
    raw.update({name: value for name, value in environ.items() if name in KNOWN_VARIABLES})

    def get(name: str, parse: Callable[[str, str], _T], default: _T) -> _T:
        text = raw.get(name)
        if text is None or text.strip() == "":
            return default
        return parse(name, text)

    env = get("SIGEX_ENV", _parse_choice(Environment), Environment.PRODUCTION)
    user_home = home if home is not None else Path.home()
    state_dir = get("SIGEX_STATE_DIR", _parse_path, user_home / ".local" / "state" / "sigex")
    party = get("SIGEX_PARTY", _parse_party, None)
    federation = state_dir / "federation"
    party_dir = (
        None
        if party is None
        else federation / "admin"
        if party == ADMIN_PARTY
        else federation / "parties" / party
    )
    metrics_port = get("SIGEX_METRICS_PORT", _parse_port, 9464)
    default_security = Security.PLAINTEXT if env is Environment.DEVELOPMENT else Security.MTLS
    default_format = LogFormat.CONSOLE if env.is_local else LogFormat.JSON

    return Settings(
        env=env,
        state_dir=state_dir,
        bootstrap=get("SIGEX_BOOTSTRAP", _parse_bootstrap, (BrokerAddress("127.0.0.1", 9092),)),
        security=get("SIGEX_SECURITY", _parse_choice(Security), default_security),
        party=party,
        tls_ca=get("SIGEX_TLS_CA", _parse_path, federation / TLS_CA_FILE if party_dir else None),
        tls_cert=get(
            "SIGEX_TLS_CERT", _parse_path, party_dir / TLS_CERT_FILE if party_dir else None
        ),
        tls_key=get("SIGEX_TLS_KEY", _parse_path, party_dir / TLS_KEY_FILE if party_dir else None),
        audit_db=get(
            "SIGEX_AUDIT_DB",
            _parse_audit_db,
            Secret(str(state_dir / "audit.sqlite"), shown=str(state_dir / "audit.sqlite")),
        ),
        audit_db_password=get("SIGEX_AUDIT_DB_PASSWORD_FILE", _read_password_file, None),
        metrics_port=metrics_port,
        health_port=get("SIGEX_HEALTH_PORT", _parse_port, metrics_port),
        log_format=get("SIGEX_LOG_FORMAT", _parse_choice(LogFormat), default_format),
        log_level=get("SIGEX_LOG_LEVEL", _parse_log_level, "WARNING"),
        gateway_group=get("SIGEX_GATEWAY_GROUP", _parse_group, "sigex-gateway"),
        policy_dir=get("SIGEX_POLICY_DIR", _parse_path, None),
        audit_api_port=get("SIGEX_AUDIT_API_PORT", _parse_port, 8080),
        config_file=config_file,
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """Something ``sigex config check`` found: the setting and what is wrong."""

    setting: str
    problem: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


def check_settings(settings: Settings) -> tuple[Problem, ...]:
    """Checks that need the file system: TLS files present, folders usable, ports distinct."""
    problems: list[Problem] = []
    if settings.security is Security.MTLS:
        for name, path in (
            ("SIGEX_TLS_CA", settings.tls_ca),
            ("SIGEX_TLS_CERT", settings.tls_cert),
            ("SIGEX_TLS_KEY", settings.tls_key),
        ):
            if path is None:
                problems.append(Problem(name, "not set (set SIGEX_PARTY or the path)"))
            elif not path.is_file():
                problems.append(Problem(name, "file not found"))
        key = settings.tls_key
        if key is not None and key.is_file() and stat.S_IMODE(key.stat().st_mode) & 0o077:
            problems.append(Problem("SIGEX_TLS_KEY", "readable by group or others (chmod 600)"))
    if settings.state_dir.exists() and not settings.state_dir.is_dir():
        problems.append(Problem("SIGEX_STATE_DIR", "exists but is not a folder"))
    if settings.policy_dir is not None and not settings.policy_dir.is_dir():
        problems.append(Problem("SIGEX_POLICY_DIR", "folder not found"))
    if settings.audit_api_port in (settings.metrics_port, settings.health_port):
        problems.append(Problem("SIGEX_AUDIT_API_PORT", "clashes with the metrics/health port"))
    if not settings.uses_postgres:
        parent = Path(settings.audit_db.reveal()).parent
        if parent.exists() and not parent.is_dir():
            problems.append(Problem("SIGEX_AUDIT_DB", "its folder is not a folder"))
    return tuple(problems)
