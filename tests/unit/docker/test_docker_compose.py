"""docker/compose.yaml: the cross-references, resolved against the rest of the repository.

No Docker engine runs on these machines, so the stack is checked statically:
services, volumes, secrets, ports, health checks, settings and the commands
each container runs. The schema check is in test_docker_compose_schema.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from sigex.audit.witness_policy import load_witness_policy
from sigex.cli import main as sigex_cli
from sigex.config import KNOWN_VARIABLES, Security, check_settings, load_settings

REPO = Path(__file__).resolve().parents[3]
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"

PRINCIPAL_RULE = (
    "RULE:^CN=([A-Z0-9]+),OU=key-generation-([0-9]+),.*$/$1.g$2/,"
    "RULE:^CN=([A-Z0-9]+),.*$/$1/,DEFAULT"
)
ONE_SHOT = frozenset({"init"})
SIGEX_IMAGE = re.compile(r"^sigex:")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


#: services of the sigex image that run a partner's own system, not a sigex command
PARTNER_SYSTEMS = frozenset({"case-system-gm0363"})
#: services that publish their own HTTP port (not the audit API's)
NODES = {"node-gm0363": 8470}


def sigex_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services(compose).items()
        if SIGEX_IMAGE.match(service.get("image", "")) and name not in PARTNER_SYSTEMS
    }


def interpolate(text: str) -> str:
    """Compose's interpolation for the forms this file uses: ${VAR:-default} and $$."""
    text = re.sub(r"\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: interpolate(str(value)) for key, value in raw.items()}


def all_strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (str(key), *all_strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in all_strings(item)]
    return []


def test_no_unescaped_dollar(compose: dict[str, Any]) -> None:
    for text in all_strings(compose):
        stripped = text.replace("$$", "")
        assert not re.search(r"\$(?!\{[A-Z_][A-Z0-9_]*(:-[^}]*)?\})", stripped), text


# --- cross-references ----------------------------------------------------------------------


def test_depends_on_names_services_without_cycles(compose: dict[str, Any]) -> None:
    known = set(services(compose))
    graph: dict[str, set[str]] = {}
    for name, service in services(compose).items():
        depends = service.get("depends_on", {})
        targets = set(depends) if isinstance(depends, (dict, list)) else set()
        assert targets <= known, f"{name} depends on unknown {targets - known}"
        graph[name] = targets
        if isinstance(depends, dict):
            for target, rule in depends.items():
                if target in ONE_SHOT:
                    assert rule["condition"] == "service_completed_successfully", name
                elif services(compose)[target].get("healthcheck", {}).get("disable") is not True:
                    assert rule["condition"] in {"service_healthy", "service_started"}, name
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, f"dependency cycle through {node}"
        if node in done:
            return
        visiting.add(node)
        for target in graph[node]:
            visit(target)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)


def named_volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts: list[tuple[str, str]] = []
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        mounts.append((source, rest))
    return mounts


def test_every_named_volume_is_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes", {}))
    used: set[str] = set()
    for name, service in services(compose).items():
        for source, _ in named_volume_mounts(service):
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"{name}: bind mount {source} not in docker/"
                continue
            assert source in declared, f"{name}: volume {source} is not declared"
            used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_only_init_writes_the_federation(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for source, rest in named_volume_mounts(service):
            if source in {"federation", "broker-tls"} and name != "init":
                assert rest.endswith(":ro"), f"{name} mounts {source} writable"


def test_secrets_are_declared_and_files_are_git_ignored(compose: dict[str, Any]) -> None:
    declared = compose.get("secrets", {})
    for name, service in services(compose).items():
        for secret in service.get("secrets", []):
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in declared, f"{name}: secret {source} is not declared"
    ignored = (DOCKER / ".gitignore").read_text(encoding="utf-8").split()
    for name, secret in declared.items():
        assert "file" in secret, f"secret {name} must come from a file"
        # the default is in the git-ignored folder; DB_PASSWORD_FILE may name another file
        default = re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", secret["file"])
        assert default.startswith("./secrets/"), name
        assert "secrets/" in ignored
    tracked = subprocess.run(
        ["git", "ls-files", "docker/secrets", "docker/.env"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == "", "a secret file is committed"


SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.I)


def test_no_literal_secret_in_the_file(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            if SECRET_WORDS.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret inline"
                assert value.startswith("/run/secrets/"), f"{name}: {key} is not a Docker secret"
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"{name}: {key} has a password"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "BEGIN PRIVATE KEY" not in text
    assert not re.search(
        r"(?i)password[ \t]*[:=][ \t]*['\"]?[A-Za-z0-9]", text.replace("_FILE", "")
    )


def test_long_running_services_have_health_checks_and_restart(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert service.get("restart") in {"unless-stopped", "always"}, name


def test_health_check_scripts_exist(compose: dict[str, Any]) -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    for name, service in sigex_services(compose).items():
        test = service.get("healthcheck", {}).get("test", [])
        if "/opt/sigex/healthcheck.py" in test:
            assert "COPY docker/healthcheck.py /opt/sigex/healthcheck.py" in dockerfile, name
    for broker in BROKERS:
        kafka_check = services(compose)[broker]["healthcheck"]["test"]
        assert kafka_check[-1] == "/opt/sigex-entry/health.sh"
    assert (DOCKER / "entry" / "kafka" / "health.sh").is_file()
    assert (DOCKER / "entry" / "kafka" / "start.sh").is_file()


def host_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    published: list[tuple[str, int]] = []
    for port in service.get("ports", []):
        parts = interpolate(str(port)).split(":")
        assert len(parts) == 3, f"publish with an explicit host address: {port}"
        published.append((parts[0], int(parts[1])))
    return published


def test_published_ports_do_not_clash_and_stay_on_loopback(compose: dict[str, Any]) -> None:
    seen: dict[int, str] = {}
    for name, service in services(compose).items():
        ports = host_ports(service)
        replicas = service.get("deploy", {}).get("replicas", 1)
        assert not (ports and replicas > 1), f"{name}: replicas cannot share a host port"
        for address, port in ports:
            assert address == "127.0.0.1", f"{name}: {port} is published beyond this host"
            assert port not in seen, f"{name} and {seen.get(port)} both publish {port}"
            seen[port] = name


def test_gateway_runs_two_replicas(compose: dict[str, Any]) -> None:
    gateway = services(compose)["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert "container_name" not in gateway


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = interpolate(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.match(r"^\d+(\.\d+)+", tag), f"{name}: {image} has no version tag"
    for broker in BROKERS:
        image = interpolate(services(compose)[broker]["image"])
        assert re.match(r"^apache/kafka:4\.\d+\.\d+$", image)


# --- settings: every variable a sigex container gets is one sigex reads --------------------


def test_sigex_services_set_only_known_settings(compose: dict[str, Any]) -> None:
    assert set(sigex_services(compose)) == {
        "init",
        "gateway",
        "audit-indexer",
        "audit-api",
        "node-gm0363",
        *(f"witness-{party.lower()}" for party in load_witness_policy().witnesses),
    }
    for name, service in sigex_services(compose).items():
        unknown = set(environment(service)) - KNOWN_VARIABLES
        assert not unknown, f"{name} sets {unknown}, which sigex.config does not know"
    for name, service in services(compose).items():
        if name not in sigex_services(compose):
            assert not [k for k in environment(service) if k.startswith("SIGEX_")], name


def test_sigex_service_settings_load_and_check(compose: dict[str, Any], tmp_path: Path) -> None:
    password_file = tmp_path / "postgres_password"
    password_file.write_text("for-the-test\n", encoding="utf-8")
    for name, service in sigex_services(compose).items():
        env = environment(service)
        if "SIGEX_AUDIT_DB_PASSWORD_FILE" in env:
            secret_name = Path(env["SIGEX_AUDIT_DB_PASSWORD_FILE"]).name
            assert secret_name in service.get("secrets", []), f"{name} lacks its secret"
            env["SIGEX_AUDIT_DB_PASSWORD_FILE"] = str(password_file)
        settings = load_settings(env)
        assert settings.security is Security.MTLS, name
        assert settings.party is not None, name
        assert settings.uses_postgres or "SIGEX_AUDIT_DB" not in env, name
        clashes = [p for p in check_settings(settings) if p.setting == "SIGEX_AUDIT_API_PORT"]
        assert not clashes, name
        exposed = {int(port) for port in service.get("expose", [])}
        if name not in ONE_SHOT:
            assert settings.health_port in exposed, f"{name}: health port is not exposed"
        for _, port in host_ports(service):
            api = NODES.get(name, settings.audit_api_port)
            published = {api, *console_port(service)}
            assert port in published, f"{name}: publishes {port}, not its API or console"


@pytest.mark.parametrize("broker", ["kafka-1", "kafka-2", "kafka-3"])
def test_kafka_speaks_only_mutual_tls_with_acls(compose: dict[str, Any], broker: str) -> None:
    env = environment(services(compose)[broker])
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = [item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")]
    assert all(protocols[listener] == "SSL" for listener in listeners)
    assert env["KAFKA_SSL_CLIENT_AUTH"] == "required"
    assert env["KAFKA_SSL_PRINCIPAL_MAPPING_RULES"] == PRINCIPAL_RULE
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert set(env["KAFKA_SUPER_USERS"].split(";")) == {"User:BROKER", "User:ADMIN"}
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    bootstrap = load_settings(environment(services(compose)["gateway"])).bootstrap_servers
    assert f"INTERNAL://{broker}:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert f"{broker}:9092" in bootstrap.split(",")
    published = [port for _, port in host_ports(services(compose)[broker])]
    assert f"LOCAL://localhost:{published[0]}" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_three_brokers_form_one_quorum_and_keep_every_write_on_two(
    compose: dict[str, Any],
) -> None:
    envs = [environment(services(compose)[broker]) for broker in BROKERS]
    assert {env["KAFKA_NODE_ID"] for env in envs} == {"1", "2", "3"}
    assert {env["CLUSTER_ID"] for env in envs} == {envs[0]["CLUSTER_ID"]}
    for env in envs:
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert voters == ["1@kafka-1:9093", "2@kafka-2:9093", "3@kafka-3:9093"]
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    ports = [host_ports(services(compose)[broker])[0][1] for broker in BROKERS]
    assert len(set(ports)) == 3
    volumes = [services(compose)[broker]["volumes"][0] for broker in BROKERS]
    assert len(set(volumes)) == 3, "each broker keeps its own data"


def _map_principal(rules: str, name: str) -> str:
    """What Kafka's SslPrincipalMapper makes of ``name``: the first RULE that matches, else
    DEFAULT (the name itself)."""
    for rule in re.findall(r"RULE:([^/]+)/([^/]*)/", rules):
        pattern, replacement = rule
        found = re.match(pattern, name)
        if found:
            return found.expand(re.sub(r"\$(\d)", r"\\\1", replacement))
    return name


def test_principal_rule_maps_a_certificate_name_to_the_party_and_its_generation() -> None:
    party = "CN=GM0363,OU=key-generation-2,2.5.4.5=#1314,O=Gemeente Amsterdam,C=NL"
    assert _map_principal(PRINCIPAL_RULE, party) == "GM0363.g2"
    assert _map_principal(PRINCIPAL_RULE, "CN=ADMIN,O=sigex administration,C=NL") == "ADMIN"
    assert _map_principal(PRINCIPAL_RULE, "CN=gm0363,O=x") == "CN=gm0363,O=x"


def test_compose_maps_principals_as_the_local_broker_does() -> None:
    from sigex.broker.local import PRINCIPAL_MAPPING_RULES

    for name in (
        "CN=NLA,OU=key-generation-7,2.5.4.5=#1314,O=Nederlandse Arbeidsinspectie,C=NL",
        "CN=BROKER,O=sigex broker,C=NL",
        "CN=NLA,2.5.4.5=#1314,O=Nederlandse Arbeidsinspectie,C=NL",
    ):
        assert _map_principal(PRINCIPAL_RULE, name) == _map_principal(PRINCIPAL_MAPPING_RULES, name)


# --- commands: what each container runs exists in the sigex command line --------------------


def container_command(service: dict[str, Any]) -> list[str]:
    return [str(word) for word in service.get("command", [])]


def init_script_commands() -> list[list[str]]:
    script = (DOCKER / "entry" / "init.sh").read_text(encoding="utf-8")
    commands: list[list[str]] = []
    for raw_line in script.splitlines():
        line = raw_line.strip()
        if line.startswith("#"):
            continue
        for match in re.finditer(r"\bsigex((?: [a-z][a-z-]*)+)", line):
            commands.append(match.group(1).split())
    return commands


def resolve(words: list[str]) -> click.Command:
    """The click command ``sigex <words>`` names; skip when its group is not built yet."""
    command: click.Command = sigex_cli
    ctx = click.Context(sigex_cli)
    for position, word in enumerate(words):
        assert isinstance(command, click.Group), (
            f"sigex {' '.join(words[:position])} has no subcommands"
        )
        found = command.get_command(ctx, word)
        if found is None and position == 0:
            pytest.skip(f"`sigex {word}` is not built yet")
        assert found is not None, f"`sigex {' '.join(words[: position + 1])}` does not exist"
        command = found
    return command


def all_container_commands(compose: dict[str, Any]) -> list[list[str]]:
    commands = [command_words(container_command(s)) for s in sigex_services(compose).values()]
    return [c for c in commands if c] + init_script_commands()


def test_init_runs_keys_init_and_provision(compose: dict[str, Any]) -> None:
    init = services(compose)["init"]
    assert init["entrypoint"] == ["/bin/sh", "/opt/sigex/entry/init.sh"]
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"COPY docker/entry/init\.sh .*/opt/sigex/entry/", dockerfile)
    commands = init_script_commands()
    assert ["keys", "init"] in commands
    assert ["provision"] in commands
    assert commands.index(["keys", "init"]) < commands.index(["provision"])


EXPECTED_COMMANDS = {
    "gateway": ["gateway", "run"],
    "audit-indexer": ["audit", "index"],
    "audit-api": ["audit", "serve"],
}


def command_words(command: list[str]) -> list[str]:
    """The subcommand path of a container command: the words before the first option."""
    words: list[str] = []
    for word in command:
        if word.startswith("-"):
            break
        words.append(word)
    return words


def test_services_run_the_agreed_commands(compose: dict[str, Any]) -> None:
    for name, expected in EXPECTED_COMMANDS.items():
        assert command_words(container_command(services(compose)[name])) == expected


def test_container_options_exist_on_the_command(compose: dict[str, Any]) -> None:
    for name, service in sigex_services(compose).items():
        command = container_command(service)
        if not command:
            continue
        words = command_words(command)
        try:
            resolved = resolve(words)
        except pytest.skip.Exception:
            continue
        accepted = {opt for param in resolved.params for opt in param.opts}
        for word in command[len(words) :]:
            if word.startswith("--"):
                assert word.split("=")[0] in accepted, (
                    f"{name}: `sigex {' '.join(words)}` has no {word}"
                )


def console_port(service: dict[str, Any]) -> list[int]:
    """The auditor's console port a service's command names (``--console-port``), if any."""
    command = container_command(service)
    if "--console-port" not in command:
        return []
    return [int(command[command.index("--console-port") + 1])]


def test_audit_api_port_agrees_everywhere(compose: dict[str, Any]) -> None:
    api = services(compose)["audit-api"]
    command = container_command(api)
    port = environment(api)["SIGEX_AUDIT_API_PORT"]
    assert command[command.index("--port") + 1] == port
    (console,) = console_port(api)
    assert api["ports"] == [f"127.0.0.1:{port}:{port}", f"127.0.0.1:{console}:{console}"]
    assert api["healthcheck"]["test"][-1] == f"tcp:{port}"


def test_entry_scripts_are_in_the_image(compose: dict[str, Any]) -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    for name, service in sigex_services(compose).items():
        entrypoint = service.get("entrypoint")
        if entrypoint is None:
            continue
        script = Path(entrypoint[-1])
        assert script.parent == Path("/opt/sigex/entry"), name
        assert f"docker/entry/{script.name}" in dockerfile, f"{name}: {script} is not copied"
        assert (DOCKER / "entry" / script.name).is_file()
    for name in ("audit-indexer", "audit-api"):
        assert services(compose)[name]["entrypoint"][-1].endswith("with-db-password.sh")


@pytest.mark.parametrize(
    "words",
    [
        ["keys", "init"],
        ["provision"],
        ["gateway", "run"],
        ["audit", "index"],
        ["audit", "serve"],
        ["config", "check"],
    ],
    ids=lambda words: "sigex " + " ".join(words),
)
def test_container_command_exists_in_the_cli(words: list[str], compose: dict[str, Any]) -> None:
    assert words in all_container_commands(compose)
    resolve(words)


def integration_sources() -> str:
    folder = REPO / "tests" / "integration"
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.py")))


@pytest.mark.parametrize(
    "words",
    [["keys", "init"], ["provision"], ["gateway", "run"], ["audit", "index"], ["audit", "serve"]],
    ids=lambda words: "sigex " + " ".join(words),
)
def test_integration_tests_run_the_same_command(words: list[str]) -> None:
    """The command a container runs is one the integration tests run against a real broker."""
    quoted = r",\s*".join(f'"{word}"' for word in words)
    spaced = r"\s+".join(words)
    pattern = re.compile(rf"({quoted}|sigex\s+{spaced}\b)")
    if not pattern.search(integration_sources()):
        pytest.fail(f"no integration test runs `sigex {' '.join(words)}`")
    resolve(words)


# --- the broker certificate must name the hosts the compose file advertises -----------------


def advertised_hosts(compose: dict[str, Any]) -> set[str]:
    return {
        item.split("://")[1].rsplit(":", 1)[0]
        for broker in BROKERS
        for item in environment(services(compose)[broker])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }


def init_broker_hosts() -> tuple[str, ...]:
    """The --broker-host names the init service passes to `sigex keys init`."""
    script = (REPO / "docker" / "entry" / "init.sh").read_text()
    line = next(line for line in script.splitlines() if line.strip().startswith("sigex keys init"))
    words = line.split()
    return tuple(words[i + 1] for i, word in enumerate(words) if word == "--broker-host")


def test_broker_certificate_names_every_advertised_host(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from cryptography import x509

    from sigex.clock import SystemClock
    from sigex.identity import init_federation, read_parties

    init_federation(
        tmp_path,
        read_parties(REPO / "policies" / "parties.yaml"),
        SystemClock(),
        broker_hosts=init_broker_hosts(),
    )
    pem = (tmp_path / "federation" / "broker" / "keystore.pem").read_bytes()
    certificate = x509.load_pem_x509_certificates(pem)[0]
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert advertised_hosts(compose) <= set(names.get_values_for_type(x509.DNSName))


def test_the_partner_node_listens_beyond_loopback_only_with_mutual_tls(
    compose: dict[str, Any],
) -> None:
    node = services(compose)["node-gm0363"]
    command = container_command(node)
    listen = command[command.index("--listen") + 1]
    assert listen.endswith(f":{NODES['node-gm0363']}")
    for option in ("--tls-cert", "--tls-key", "--client-ca"):
        assert option in command
    case_system = services(compose)["case-system-gm0363"]
    words = case_system["command"]
    assert words[words.index("--node") + 1] == f"https://node-gm0363:{NODES['node-gm0363']}"
    assert "federation" not in str(case_system.get("volumes")), "a partner system has no keys"
