"""sigex.config: strict, typed settings from the environment and a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.cli import main
from sigex.cli.config import config
from sigex.config import (
    KNOWN_VARIABLES,
    SETTINGS,
    TEST_ONLY_VARIABLES,
    Environment,
    LogFormat,
    Secret,
    Security,
    check_settings,
    load_settings,
)
from sigex.errors import ConfigurationError

HOME = Path("/home/operator")


def test_defaults_without_any_variable() -> None:
    settings = load_settings({}, home=HOME)
    assert settings.env is Environment.PRODUCTION
    assert settings.state_dir == HOME / ".local" / "state" / "sigex"
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.security is Security.MTLS
    assert settings.log_format is LogFormat.JSON
    assert settings.metrics_port == settings.health_port == 9464
    assert settings.audit_db.reveal() == str(settings.state_dir / "audit.sqlite")
    assert settings.tls_cert is None


def test_development_defaults_to_plaintext_and_console() -> None:
    settings = load_settings({"SIGEX_ENV": "development"}, home=HOME)
    assert settings.security is Security.PLAINTEXT
    assert settings.log_format is LogFormat.CONSOLE


def test_tls_paths_default_to_the_party_folder() -> None:
    settings = load_settings({"SIGEX_PARTY": "NLA", "SIGEX_STATE_DIR": "/srv/sigex"}, home=HOME)
    party_dir = Path("/srv/sigex/federation/parties/NLA")
    assert settings.require_tls().cert == party_dir / "tls.pem"
    assert settings.tls_key == party_dir / "tls.key"
    assert settings.tls_ca == Path("/srv/sigex/federation/ca.pem")


def test_admin_tls_files_live_in_the_admin_folder() -> None:
    settings = load_settings({"SIGEX_PARTY": "ADMIN", "SIGEX_STATE_DIR": "/srv/sigex"}, home=HOME)
    assert settings.tls_key == Path("/srv/sigex/federation/admin/tls.key")


def test_explicit_tls_path_wins_over_the_party_folder() -> None:
    settings = load_settings({"SIGEX_PARTY": "NLA", "SIGEX_TLS_CA": "/etc/ca.pem"}, home=HOME)
    assert settings.tls_ca == Path("/etc/ca.pem")


def test_unknown_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="SIGEX_BOOTSTRAPS"):
        load_settings({"SIGEX_BOOTSTRAPS": "kafka:9092"}, home=HOME)


def test_other_variables_are_ignored() -> None:
    settings = load_settings({"PATH": "/bin", "KAFKA_HEAP_OPTS": "-Xmx1g"}, home=HOME)
    assert settings.env is Environment.PRODUCTION


def test_test_only_variables_are_allowed() -> None:
    environ = dict.fromkeys(TEST_ONLY_VARIABLES, "x")
    assert load_settings(environ, home=HOME).bootstrap_servers == "127.0.0.1:9092"
    assert "SIGEX_TEST_POSTGRES_DSN" in TEST_ONLY_VARIABLES


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIGEX_METRICS_PORT", "ninety"),
        ("SIGEX_METRICS_PORT", "70000"),
        ("SIGEX_HEALTH_PORT", "0"),
        ("SIGEX_AUDIT_API_PORT", "-1"),
        ("SIGEX_BOOTSTRAP", "kafka"),
        ("SIGEX_BOOTSTRAP", "kafka:9092,:9093"),
        ("SIGEX_SECURITY", "starttls"),
        ("SIGEX_ENV", "staging"),
        ("SIGEX_LOG_FORMAT", "xml"),
        ("SIGEX_LOG_LEVEL", "LOUD"),
        ("SIGEX_PARTY", "nla"),
        ("SIGEX_GATEWAY_GROUP", "a group"),
        ("SIGEX_AUDIT_DB", "mysql://db/sigex"),
        ("SIGEX_AUDIT_DB", "postgresql://user@db:port/sigex"),
    ],
)
def test_malformed_value_is_named_but_not_echoed(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value, "SIGEX_ENV": "test"} | {variable: value}, home=HOME)
    assert variable in str(raised.value)
    assert value not in str(raised.value)


def test_plaintext_is_refused_outside_local_environments() -> None:
    with pytest.raises(ConfigurationError, match="SIGEX_SECURITY"):
        load_settings({"SIGEX_SECURITY": "plaintext"}, home=HOME)
    with pytest.raises(ConfigurationError, match="SIGEX_SECURITY"):
        load_settings({"SIGEX_SECURITY": "plaintext", "SIGEX_ENV": "production"}, home=HOME)
    allowed = load_settings({"SIGEX_SECURITY": "plaintext", "SIGEX_ENV": "test"}, home=HOME)
    assert allowed.security is Security.PLAINTEXT


def test_bootstrap_list_and_ipv6() -> None:
    settings = load_settings({"SIGEX_BOOTSTRAP": "kafka-1:9092, [::1]:19092"}, home=HOME)
    assert [(a.host, a.port) for a in settings.bootstrap] == [("kafka-1", 9092), ("::1", 19092)]


def test_secret_hides_itself() -> None:
    secret = Secret("hunter2-correct-horse")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-correct-horse"


def test_dsn_password_is_hidden_in_repr_and_describe() -> None:
    dsn = "postgresql://sigex:s3cr3t-pw@postgres:5432/sigex"
    settings = load_settings({"SIGEX_AUDIT_DB": dsn}, home=HOME)
    assert "s3cr3t-pw" not in repr(settings)
    assert "s3cr3t-pw" not in str(settings.describe())
    assert (
        dict(settings.describe())["SIGEX_AUDIT_DB"]
        == "postgresql://sigex:********@postgres:5432/sigex"
    )
    assert settings.audit_dsn().reveal() == dsn


def test_password_file_fills_the_dsn_and_stays_hidden(tmp_path: Path) -> None:
    password_file = tmp_path / "postgres_password"
    password_file.write_text("p@ss/word\n", encoding="utf-8")
    settings = load_settings(
        {
            "SIGEX_AUDIT_DB": "postgresql://sigex@postgres:5432/sigex",
            "SIGEX_AUDIT_DB_PASSWORD_FILE": str(password_file),
        },
        home=HOME,
    )
    assert "p@ss" not in repr(settings)
    assert settings.audit_dsn().reveal() == "postgresql://sigex:p%40ss%2Fword@postgres:5432/sigex"
    assert "p@ss" not in repr(settings.audit_dsn())


def test_missing_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SIGEX_AUDIT_DB_PASSWORD_FILE"):
        load_settings({"SIGEX_AUDIT_DB_PASSWORD_FILE": str(tmp_path / "absent")}, home=HOME)


def test_file_settings_and_environment_precedence(tmp_path: Path) -> None:
    config_file = tmp_path / "sigex.toml"
    config_file.write_text(
        'bootstrap = "kafka:9092"\nmetrics_port = 9100\nparty = "UWV"\n', encoding="utf-8"
    )
    settings = load_settings(
        {"SIGEX_CONFIG_FILE": str(config_file), "SIGEX_METRICS_PORT": "9200"}, home=HOME
    )
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.metrics_port == 9200
    assert settings.party == "UWV"
    assert settings.config_file == config_file


def test_unknown_file_key_is_named(tmp_path: Path) -> None:
    config_file = tmp_path / "sigex.toml"
    config_file.write_text('bootstrap = "kafka:9092"\nbootstarp = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="bootstarp"):
        load_settings({"SIGEX_CONFIG_FILE": str(config_file)}, home=HOME)


@pytest.mark.parametrize(
    "content", ["metrics_port = true\n", "[gateway]\ngroup = 'x'\n", "metrics_port = = 1\n"]
)
def test_malformed_file_is_refused(tmp_path: Path, content: str) -> None:
    config_file = tmp_path / "sigex.toml"
    config_file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="SIGEX_CONFIG_FILE"):
        load_settings({"SIGEX_CONFIG_FILE": str(config_file)}, home=HOME)


def test_malformed_file_value_names_its_setting(tmp_path: Path) -> None:
    config_file = tmp_path / "sigex.toml"
    config_file.write_text('health_port = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="SIGEX_HEALTH_PORT"):
        load_settings({"SIGEX_CONFIG_FILE": str(config_file)}, home=HOME)


def test_settings_are_frozen() -> None:
    settings = load_settings({}, home=HOME)
    with pytest.raises(AttributeError):
        settings.metrics_port = 1  # type: ignore[misc]


def test_every_setting_is_described_and_documented() -> None:
    described = {name for name, _ in load_settings({}, home=HOME).describe()}
    assert described == KNOWN_VARIABLES == {spec.variable for spec in SETTINGS}
    documentation = (Path(__file__).resolve().parents[3] / "docs" / "configuration.md").read_text(
        encoding="utf-8"
    )
    for name in KNOWN_VARIABLES | set(TEST_ONLY_VARIABLES):
        assert f"`{name}`" in documentation, name


def test_check_reports_missing_tls_files(tmp_path: Path) -> None:
    settings = load_settings({"SIGEX_PARTY": "NLA", "SIGEX_STATE_DIR": str(tmp_path)}, home=HOME)
    problems = {problem.setting for problem in check_settings(settings)}
    assert {"SIGEX_TLS_CA", "SIGEX_TLS_CERT", "SIGEX_TLS_KEY"} <= problems
    party_dir = tmp_path / "federation" / "parties" / "NLA"
    party_dir.mkdir(parents=True)
    for path in (tmp_path / "federation" / "ca.pem", party_dir / "tls.pem", party_dir / "tls.key"):
        path.write_text("x", encoding="utf-8")
    (party_dir / "tls.key").chmod(0o644)  # a private key others may read is a problem
    assert next(p.setting for p in check_settings(settings)) == "SIGEX_TLS_KEY"
    (party_dir / "tls.key").chmod(0o600)
    # the party's own keys: the signing and the encryption key are missing
    missing = [str(p) for p in check_settings(settings)]
    assert len(missing) == 2 and all(p.startswith("SIGEX_PARTY:") for p in missing)
    assert "signing.key is missing" in missing[0] and "encryption.key is missing" in missing[1]
    for name in ("signing.key", "encryption.key"):
        (party_dir / name).write_text("x", encoding="utf-8")
        (party_dir / name).chmod(0o600)
    assert check_settings(settings) == ()
    (party_dir / "signing.key").chmod(0o640)
    assert ["readable by group or others" in str(p) for p in check_settings(settings)] == [True]


def test_check_wants_the_pseudonym_key_for_the_gateway(tmp_path: Path) -> None:
    environ = {"SIGEX_PARTY": "GATEWAY", "SIGEX_STATE_DIR": str(tmp_path), "SIGEX_ENV": "test"}
    settings = load_settings(environ | {"SIGEX_SECURITY": "plaintext"}, home=HOME)
    problems = [str(p) for p in check_settings(settings)]
    assert any("audit pseudonym key" in p and "pseudonym.key is missing" in p for p in problems)


def test_cli_check_fails_with_a_missing_signing_key(tmp_path: Path) -> None:
    party_dir = tmp_path / "federation" / "parties" / "NLA"
    party_dir.mkdir(parents=True)
    for path in (tmp_path / "federation" / "ca.pem", party_dir / "tls.pem"):
        path.write_text("x", encoding="utf-8")
    for name in ("tls.key", "encryption.key"):
        (party_dir / name).write_text("x", encoding="utf-8")
        (party_dir / name).chmod(0o600)
    environ = {"SIGEX_PARTY": "NLA", "SIGEX_STATE_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["config", "check"], env=environ)
    assert result.exit_code == 2, result.output
    assert "signing.key is missing" in result.output
    assert "settings ok" not in result.output


def test_check_reports_port_clash() -> None:
    settings = load_settings(
        {"SIGEX_ENV": "development", "SIGEX_AUDIT_API_PORT": "9464"}, home=HOME
    )
    assert [p.setting for p in check_settings(settings)] == ["SIGEX_AUDIT_API_PORT"]


def test_cli_show_masks_secrets_and_check_exits_two(tmp_path: Path) -> None:
    runner = CliRunner()
    environ = {
        "SIGEX_ENV": "development",
        "SIGEX_STATE_DIR": str(tmp_path),
        "SIGEX_AUDIT_DB": "postgresql://sigex:topsecret@db/sigex",
    }
    shown = runner.invoke(config, ["show"], env=environ)
    assert shown.exit_code == 0, shown.output
    assert "topsecret" not in shown.output
    assert "SIGEX_AUDIT_DB" in shown.output
    assert runner.invoke(config, ["check"], env=environ).exit_code == 0
    mtls = runner.invoke(config, ["check"], env={**environ, "SIGEX_SECURITY": "mtls"})
    assert mtls.exit_code != 0
    assert "SIGEX_TLS_CERT" in mtls.output


def test_main_cli_turns_unknown_setting_into_exit_two(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["config", "show"], env={"SIGEX_ENV": "development", "SIGEX_NOPE": "1"}
    )
    assert result.exit_code == 2
    assert "SIGEX_NOPE" in result.output
