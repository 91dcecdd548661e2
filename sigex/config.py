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
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from sigex.errors import ConfigurationError
from sigex.roles import Role

PREFIX: Final = "SIGEX_"
MASK: Final = "********"

# -- the state folder's layout, in one place --------------------------------------------------
#
# <state>/federation/ca.pem                   the federation CA (written by ``sigex keys init``)
# <state>/federation/parties/<PARTY>/         a party's keys and TLS files
# <state>/federation/admin/                   the ADMIN principal's TLS files
# <state>/federation/parties/AUDIT/pseudonym.key   the audit service's pseudonym key

TLS_CA_FILE: Final = "ca.pem"
TLS_CERT_FILE: Final = "tls.pem"
TLS_KEY_FILE: Final = "tls.key"
SIGNING_KEY_FILE: Final = "signing.key"
ENCRYPTION_KEY_FILE: Final = "encryption.key"
PSEUDONYM_KEY_FILE: Final = "pseudonym.key"


def default_state_dir(home: Path | None = None) -> Path:
    """``~/.local/state/sigex``: where keys and local state live unless SIGEX_STATE_DIR says."""
    return (home if home is not None else Path.home()) / ".local" / "state" / "sigex"


def federation_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "federation"


def party_dir(state_dir: Path, party: str) -> Path:
    """The folder of a party's keys and certificates (``admin/`` for the ADMIN principal)."""
    federation = federation_dir(state_dir)
    return federation / "admin" if party == Role.ADMIN else federation / "parties" / party


def pseudonym_key_path(state_dir: Path) -> Path:
    """The audit service's pseudonym key (the gateway and the indexer read it too)."""
    return party_dir(state_dir, Role.AUDIT) / PSEUDONYM_KEY_FILE


#: Variables the test suite and the benchmarks read; allowed, but not settings of a service.
TEST_ONLY_VARIABLES: Final[Mapping[str, str]] = {
    "SIGEX_TEST_POSTGRES_DSN": "a PostgreSQL server the `postgres` tests may use",
    "SIGEX_KAFKA_VERSION": "the Kafka version the local test broker downloads",
    "SIGEX_CACHE_DIR": "where downloads for tests (Kafka jars, the Compose schema) are cached",
    "SIGEX_TEST_KAFKA_IMAGE": "the Kafka image of the tests' testcontainers broker",
    "SIGEX_STACK_TEST": "1 runs the compose stack tests (`make stack-test` sets it)",
    "SIGEX_STACK_KEEP": "1 leaves the stack tests' compose project up afterwards",
    "SIGEX_STACK_ENV_FILE": "the compose variables file of the stack tests",
    "SIGEX_TEST_REQUIRE_BROWSER": "1 fails the console's browser tests when Chromium is missing",
    "SIGEX_TEST_SCREENSHOT_DIR": "where the console's browser tests save their screenshots",
}

_PARTY_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,31}$")
_GROUP_ID = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_E = TypeVar("_E", bound=StrEnum)


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
    debug: bool
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
        return federation_dir(self.state_dir)

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
        return tuple((spec.variable, _show(getattr(self, spec.attribute))) for spec in SETTINGS)


def _show(value: object) -> str:
    """A value as ``config show`` prints it: a Secret shows its mask, a list is comma-joined."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


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
    if not _PARTY_CODE.fullmatch(text):
        raise ConfigurationError(f"{name}: must be a party code (capitals and digits, e.g. NLA)")
    return text


def _parse_bootstrap(name: str, raw: str) -> tuple[BrokerAddress, ...]:
    addresses: list[BrokerAddress] = []
    for item in raw.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not _HOST.fullmatch(host) or not port.isdigit():
            raise ConfigurationError(f"{name}: each address must be host:port")
        addresses.append(BrokerAddress(host.strip("[]"), _parse_port(name, port)))
    return tuple(addresses)


def _parse_log_level(name: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in _LOG_LEVELS:
        raise ConfigurationError(f"{name}: must be one of {', '.join(_LOG_LEVELS)}")
    return level


def _parse_flag(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ConfigurationError(f"{name}: must be 1, true, yes, 0, false or no")


def _parse_group(name: str, raw: str) -> str:
    text = raw.strip()
    if not _GROUP_ID.fullmatch(text):
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


# -- the table: every setting once, driving parsing, describe() and the docs --

#: What a default is computed from: the settings resolved before it, and the user's home.
Resolved = Mapping[str, Any]


def _fixed(value: object) -> Callable[[Resolved, Path], object]:
    return lambda _resolved, _home: value


def _party_folder(resolved: Resolved) -> Path | None:
    party = resolved["party"]
    return None if party is None else party_dir(resolved["state_dir"], party)


def _party_file(name: str) -> Callable[[Resolved, Path], object]:
    def default(resolved: Resolved, _home: Path) -> Path | None:
        folder = _party_folder(resolved)
        return None if folder is None else folder / name

    return default


def _default_ca(resolved: Resolved, _home: Path) -> Path | None:
    if resolved["party"] is None:
        return None
    return federation_dir(resolved["state_dir"]) / TLS_CA_FILE


def _default_audit_db(resolved: Resolved, _home: Path) -> Secret:
    location = str(resolved["state_dir"] / "audit.sqlite")
    return Secret(location, shown=location)


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting: how it is read, its default, and how docs/configuration.md explains it.

    ``default`` is computed from the settings above it in :data:`SETTINGS` (for example
    the TLS files from the state folder and the party), so the table's order matters.
    """

    variable: str
    attribute: str
    parse: Callable[[str, str], object]
    default: Callable[[Resolved, Path], object]
    default_text: str
    values: str
    meaning: str
    in_file: bool = True

    @property
    def file_key(self) -> str | None:
        return self.variable.removeprefix(PREFIX).lower() if self.in_file else None


#: Every setting a service reads, in the order of docs/configuration.md.
SETTINGS: Final = (
    SettingSpec(
        "SIGEX_ENV", "env", _parse_choice(Environment), _fixed(Environment.PRODUCTION),
        "`production`", "`development`, `test`, `production`",
        "where the process runs; only `development` and `test` may use plaintext",
    ),
    SettingSpec(
        "SIGEX_STATE_DIR", "state_dir", _parse_path,
        lambda _resolved, home: default_state_dir(home),
        "`~/.local/state/sigex`", "a folder",
        "local state; the federation folder (keys, certificates) is `<state>/federation`",
    ),
    SettingSpec(
        "SIGEX_BOOTSTRAP", "bootstrap", _parse_bootstrap,
        _fixed((BrokerAddress("127.0.0.1", 9092),)),
        "`127.0.0.1:9092`", "`host:port[,host:port…]`, IPv6 as `[::1]:9092`",
        "the Kafka brokers to start from",
    ),
    SettingSpec(
        "SIGEX_SECURITY", "security", _parse_choice(Security),
        lambda resolved, _home: (
            Security.PLAINTEXT if resolved["env"] is Environment.DEVELOPMENT else Security.MTLS
        ),
        "`mtls`; `plaintext` when `SIGEX_ENV=development`", "`mtls`, `plaintext`",
        "how to talk to the broker; `plaintext` outside development/test stops start-up",
    ),
    SettingSpec(
        "SIGEX_PARTY", "party", _parse_party, _fixed(None),
        "none", "a party code from `policies/parties.yaml`, e.g. `NLA`, `GM0363`, `GATEWAY`",
        "the party this process acts as; picks the default TLS files",
    ),
    SettingSpec(
        "SIGEX_TLS_CA", "tls_ca", _parse_path, _default_ca,
        "`<state>/federation/ca.pem` (when `SIGEX_PARTY` is set)", "a PEM file",
        "the federation CA that signs the broker's and the parties' certificates",
    ),
    SettingSpec(
        "SIGEX_TLS_CERT", "tls_cert", _parse_path, _party_file(TLS_CERT_FILE),
        "`<state>/federation/parties/<PARTY>/tls.pem` "
        "(`<state>/federation/admin/tls.pem` for `ADMIN`)",
        "a PEM file",
        "this party's client certificate followed by the CA (its CN is the Kafka principal)",
    ),
    SettingSpec(
        "SIGEX_TLS_KEY", "tls_key", _parse_path, _party_file(TLS_KEY_FILE),
        "`<state>/federation/parties/<PARTY>/tls.key` (`admin/tls.key` for `ADMIN`)",
        "a PEM file", "the private key of that certificate",
    ),
    SettingSpec(
        "SIGEX_AUDIT_DB", "audit_db", _parse_audit_db, _default_audit_db,
        "`<state>/audit.sqlite`",
        "a SQLite file path or a `postgresql://user@host:port/db` DSN",
        "where the access log is kept",
    ),
    SettingSpec(
        "SIGEX_AUDIT_DB_PASSWORD_FILE", "audit_db_password", _read_password_file, _fixed(None),
        "none", "a file holding only the password",
        "the PostgreSQL password, filled into the DSN at connect time",
    ),
    SettingSpec(
        "SIGEX_METRICS_PORT", "metrics_port", _parse_port, _fixed(9464),
        "`9464`", "1 to 65535", "port of the Prometheus endpoint `/metrics`",
    ),
    SettingSpec(
        "SIGEX_HEALTH_PORT", "health_port", _parse_port,
        lambda resolved, _home: resolved["metrics_port"],
        "the metrics port", "1 to 65535",
        "port of `/livez` and `/readyz`; when equal to the metrics port one server answers "
        "all three",
    ),
    SettingSpec(
        "SIGEX_LOG_FORMAT", "log_format", _parse_choice(LogFormat),
        lambda resolved, _home: LogFormat.CONSOLE if resolved["env"].is_local else LogFormat.JSON,
        "`json`; `console` in development/test", "`json`, `console`",
        "the format of the operator's log on standard error",
    ),
    SettingSpec(
        "SIGEX_LOG_LEVEL", "log_level", _parse_log_level, _fixed("WARNING"),
        "`WARNING`", ", ".join(f"`{level}`" for level in _LOG_LEVELS),
        "the lowest level that is logged",
    ),
    SettingSpec(
        "SIGEX_GATEWAY_GROUP", "gateway_group", _parse_group, _fixed("sigex-gateway"),
        "`sigex-gateway`", "letters, digits, `.`, `_`, `-`",
        "the Kafka consumer group (and transactional id prefix) of the gateway replicas",
    ),
    SettingSpec(
        "SIGEX_POLICY_DIR", "policy_dir", _parse_path, _fixed(None),
        "the policy files shipped in the package", "a folder",
        "the parties, legal bases, purposes and agreements to enforce",
    ),
    SettingSpec(
        "SIGEX_AUDIT_API_PORT", "audit_api_port", _parse_port, _fixed(8080),
        "`8080`", "1 to 65535", "port of the audit query API (`sigex audit serve`)",
    ),
    SettingSpec(
        "SIGEX_DEBUG", "debug", _parse_flag, _fixed(False),
        "`0`", "`1`, `true`, `yes` or `0`, `false`, `no`",
        "a failing command shows its traceback instead of one line (as `sigex --debug`)",
    ),
    SettingSpec(
        "SIGEX_CONFIG_FILE", "config_file", _parse_path, _fixed(None),
        "none", "a TOML file", "the optional settings file described below",
        in_file=False,
    ),
)  # fmt: skip

KNOWN_VARIABLES: Final = frozenset(spec.variable for spec in SETTINGS)
#: Keys a TOML settings file may hold (the variable names without prefix, lower case).
FILE_KEYS: Final = frozenset(spec.file_key for spec in SETTINGS if spec.file_key is not None)


def is_known_variable(name: str) -> bool:
    """True for every variable sigex reads, service settings and test-only variables alike."""
    return name in KNOWN_VARIABLES or name in TEST_ONLY_VARIABLES


def settings_markdown() -> str:
    """The tables of docs/configuration.md, made from :data:`SETTINGS` (a test compares)."""
    lines = [
        "| variable | file key | default | values | meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in SETTINGS:
        key = f"`{spec.file_key}`" if spec.file_key else "(not in the file)"
        lines.append(
            f"| `{spec.variable}` | {key} | {spec.default_text} | {spec.values} | {spec.meaning} |"
        )
    lines += ["", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in TEST_ONLY_VARIABLES.items()]
    return "\n".join(lines) + "\n"


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

    user_home = home if home is not None else Path.home()
    resolved: dict[str, Any] = {}
    for spec in SETTINGS:
        text = raw.get(spec.variable)
        if spec.variable == "SIGEX_CONFIG_FILE":
            resolved[spec.attribute] = config_file
        elif text is None or text.strip() == "":
            resolved[spec.attribute] = spec.default(resolved, user_home)
        else:
            resolved[spec.attribute] = spec.parse(spec.variable, text)
    return Settings(**resolved)


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
    problems += _party_key_problems(settings)
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


def _party_key_problems(settings: Settings) -> list[Problem]:
    """The keys the party of SIGEX_PARTY acts with: present, and private to their owner."""
    party = settings.party
    if party is None or party in (Role.ADMIN, Role.BROKER):
        return []  # TLS only, checked above
    folder = party_dir(settings.state_dir, party)
    needed = [
        (f"{party} signing key", folder / SIGNING_KEY_FILE),
        (f"{party} encryption key", folder / ENCRYPTION_KEY_FILE),
    ]
    if party in (Role.GATEWAY, Role.AUDIT):
        needed.append(("audit pseudonym key", pseudonym_key_path(settings.state_dir)))
    problems = []
    for what, path in needed:
        if not path.is_file():
            problems.append(Problem("SIGEX_PARTY", f"the {what} {path} is missing"))
        elif stat.S_IMODE(path.stat().st_mode) & 0o077:
            problems.append(
                Problem("SIGEX_PARTY", f"the {what} {path} is readable by group or others")
            )
    return problems
