"""docker/Dockerfile, parsed: multi-stage, pinned base images, non-root, only what runs."""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            args[name] = value
    return args


def base_images(instructions: list[Instruction]) -> list[str]:
    args = global_args(instructions)
    images = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            image = instruction.arguments.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            images.append(image)
    return images


def test_the_parser_joins_continuations() -> None:
    parsed = parse("FROM a:1 AS x\n# c\nRUN one \\\n    two\nUSER 1\n")
    assert [i.keyword for i in parsed] == ["FROM", "RUN", "USER"]
    assert parsed[1].arguments == "one two"


def test_multi_stage(instructions: list[Instruction]) -> None:
    all_stages = stages(instructions)
    assert len(all_stages) >= 2
    names = [stage[0].arguments.split()[-1] for stage in all_stages]
    runtime = all_stages[-1]
    copies_from_build = [
        i for i in runtime if i.keyword == "COPY" and i.arguments.startswith(f"--from={names[0]}")
    ]
    assert copies_from_build, "the runtime stage must take the build stage's result"


def test_base_images_are_pinned(instructions: list[Instruction]) -> None:
    for image in base_images(instructions):
        name, _, digest = image.partition("@")
        repository, _, tag = name.rpartition(":")
        assert repository and tag, f"{image} has no tag"
        assert tag != "latest"
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"{image}: pin a full version"
        assert not digest or re.match(r"^sha256:[0-9a-f]{64}$", digest)


def test_runtime_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    runtime = stages(instructions)[-1]
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    useradd = " ".join(i.arguments for i in runtime if i.keyword == "RUN")
    assert f"--uid {user}" in useradd


def test_entrypoint_and_healthcheck(instructions: list[Instruction]) -> None:
    runtime = stages(instructions)[-1]
    entrypoints = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1] == '["sigex"]'
    checks = [i.arguments for i in runtime if i.keyword == "HEALTHCHECK"]
    assert checks and "CMD" in checks[-1]
    assert "/opt/sigex/healthcheck.py" in checks[-1]


def test_only_what_runs_is_copied(instructions: list[Instruction]) -> None:
    runtime = stages(instructions)[-1]
    assert not [i for i in instructions if i.keyword == "ADD"], "use COPY, never ADD"
    runtime_sources = [
        shlex.split(i.arguments)[0]
        for i in runtime
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
    ]
    assert set(runtime_sources) <= {"docker/healthcheck.py", "docker/entry/init.sh"}
    assert not any(i.keyword == "RUN" and "apt-get install" in i.arguments for i in runtime)


def copy_sources(instructions: list[Instruction]) -> list[str]:
    sources: list[str] = []
    for instruction in instructions:
        if instruction.keyword != "COPY" or instruction.arguments.startswith("--from"):
            continue
        words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """The .dockerignore rule: the last matching pattern wins, ``!`` lets a path back in."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
            result = not negate
    return result


def test_copied_sources_exist_and_pass_the_ignore_file(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in copy_sources(instructions):
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by the ignore file"
    assert ignored("tests/unit/x.py", patterns)
    assert ignored(".venv/bin/python", patterns)
    assert ignored("sigex/federation/tls.key", patterns) or ignored("x.key", patterns)


def test_no_secret_or_key_material_enters_the_image(instructions: list[Instruction]) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in text
    for instruction in instructions:
        if instruction.keyword in {"ENV", "ARG"}:
            assert not re.search(r"(?i)(password|secret|token)", instruction.arguments)
