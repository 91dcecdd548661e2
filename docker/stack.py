#!/usr/bin/env python3
"""Run the sigex compose stack, and say in one line what stops it.

    python3 docker/stack.py up [--local-images] [--make-secret] [-p sigex]
    python3 docker/stack.py status [-p sigex]
    python3 docker/stack.py down [-p sigex] [--volumes]

``up`` checks, before compose is asked anything, that a Docker engine answers,
that Compose is installed, that the database secret exists and is not empty,
and that every image is there or can be pulled; it then starts the stack and
waits until each service is healthy (or, for init, finished), naming any that is
not. Each failure is one line on standard error and exit status 1, never a hang.

Standard library only: operators run it with the host's python3, sigex itself
need not be installed on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPOSE_FILE = HERE / "compose.yaml"
SECRET = HERE / "secrets" / "postgres_password.txt"
LOCAL_ENV = HERE / "images" / "local.env"
BUILD_IMAGES = HERE / "images" / "build.sh"
HEALTHY_WITHIN = 300.0


class StackError(Exception):
    """What stops the stack, in one line for the operator."""


@dataclass(frozen=True)
class Compose:
    command: tuple[str, ...]
    project: str
    env_file: Path | None

    def args(self, *more: str) -> list[str]:
        env = ["--env-file", str(self.env_file)] if self.env_file else []
        return [*self.command, *env, "-p", self.project, "-f", str(COMPOSE_FILE), *more]

    def run(self, *more: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(*more), capture_output=True, text=True, timeout=timeout, check=False
        )


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def find_compose() -> tuple[str, ...]:
    if shutil.which("docker") is None:
        raise StackError("docker is not installed (Debian: apt-get install docker.io)")
    try:
        answered = docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except subprocess.TimeoutExpired:
        answered = None
    if answered is None or answered.returncode != 0:
        raise StackError(
            "no Docker engine answers: start it (systemctl start docker, or by hand: dockerd "
            "--storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs &)"
        )
    if docker("compose", "version").returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise StackError("Docker Compose is not installed (Debian: apt-get install docker-compose)")


def check_secret(secret: Path, make: bool) -> None:
    if not secret.exists() and make:
        secret.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        # Compose without swarm bind-mounts the file with its own permissions and the
        # containers read it as their users: the file readable, its folder private
        secret.chmod(0o644)
        print(f"made a new database password in {secret}", file=sys.stderr)
    if not secret.exists():
        raise StackError(
            f"the database password file {secret} is missing: create it (one line, "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "or pass --make-secret"
        )
    if not secret.read_text(encoding="utf-8").strip():
        raise StackError(f"the database password file {secret} is empty")


def images(compose: Compose) -> list[str]:
    """The images the stack runs, as the compose file and its variables resolve them."""
    config = compose.run("config")
    if config.returncode != 0:
        raise StackError(f"compose cannot read {COMPOSE_FILE}: {last_line(config.stderr)}")
    found = []
    for line in config.stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("image:"):
            found.append(stripped.split(":", 1)[1].strip().strip("'\""))
    return sorted(set(found))


def check_images(compose: Compose) -> None:
    missing = [image for image in images(compose) if docker("image", "inspect", image).returncode]
    for image in missing:
        if image.startswith("sigex:"):
            continue  # built from this checkout by `compose up --build`
        try:
            pulled = docker("pull", image, timeout=300)
        except subprocess.TimeoutExpired:
            pulled = None
        if pulled is None or pulled.returncode != 0:
            raise StackError(
                f"image {image} is missing and could not be pulled: build the local images "
                f"with {BUILD_IMAGES.relative_to(HERE.parent)} and run with --local-images"
            )


def containers(compose: Compose) -> list[dict[str, object]]:
    listed = docker(
        "ps", "-a", "--filter", f"label=com.docker.compose.project={compose.project}",
        "--format", "{{.Names}}",
    )  # fmt: skip
    states = []
    for name in listed.stdout.split():
        inspected = docker("inspect", "--format", "{{json .State}}", name)
        if inspected.returncode == 0:
            state = json.loads(inspected.stdout)
            state["Name"] = name
            states.append(state)
    return states


def not_ready(states: list[dict[str, object]]) -> list[str]:
    """Each container that is neither healthy, nor running without a health check, nor
    finished with status 0 (init), with what is wrong."""
    waiting = []
    for state in states:
        health = state.get("Health")
        health_status = health.get("Status") if isinstance(health, dict) else None
        if state["Status"] == "exited":
            if state.get("ExitCode") != 0:
                waiting.append(f"{state['Name']} exited with status {state.get('ExitCode')}")
        elif health_status not in (None, "healthy"):
            waiting.append(f"{state['Name']} is {health_status}{last_probe(health)}")
        elif state["Status"] != "running":
            waiting.append(f"{state['Name']} is {state['Status']}")
    return waiting


def last_probe(health: object) -> str:
    if not isinstance(health, dict) or not health.get("Log"):
        return ""
    output = str(health["Log"][-1].get("Output", "")).strip()
    return f" (last check: {last_line(output)})" if output else ""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def wait_until_ready(compose: Compose, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        states = containers(compose)
        waiting = not_ready(states) if states else ["no container of the stack is running"]
        if not waiting:
            return
        failed = [w for w in waiting if " exited with status " in w]
        if failed or time.monotonic() > deadline:
            shown = failed or waiting
            raise StackError(
                f"not ready after {time.monotonic() - deadline + seconds:.0f} s: "
                + "; ".join(shown)
                + f" (see: docker logs {shown[0].split()[0]})"
            )
        time.sleep(3)


def build_local_images() -> None:
    """The local images from Debian's packages; idempotent (docker/images/build.sh)."""
    print("building the local images where missing (docker/images/build.sh)", file=sys.stderr)
    built = subprocess.run([str(BUILD_IMAGES)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise StackError(f"{BUILD_IMAGES.name} failed: {last_line(built.stderr + built.stdout)}")


def up(compose: Compose, wait: float) -> None:
    local = compose.env_file is not None and compose.env_file.resolve() == LOCAL_ENV
    if local:
        build_local_images()  # the sigex image included, from this checkout
    check_images(compose)
    # with the official images compose builds sigex itself; the local ones built it above
    build = [] if local else ["--build"]
    started = compose.run("up", "-d", *build)
    if started.returncode != 0:
        raise StackError(f"compose up failed: {last_line(started.stderr)}")
    wait_until_ready(compose, wait)
    print(f"stack {compose.project} is up: every service healthy, init done")


def status(compose: Compose) -> None:
    states = containers(compose)
    if not states:
        raise StackError(f"no container of project {compose.project} exists")
    for state in states:
        health = state.get("Health")
        health_status = health.get("Status") if isinstance(health, dict) else "-"
        print(f"{state['Name']:<40} {state['Status']:<10} {health_status}")
    waiting = not_ready(states)
    if waiting:
        raise StackError("; ".join(waiting))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docker/stack.py", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "status", "down"))
    parser.add_argument("-p", "--project", default=os.environ.get("SIGEX_PROJECT", "sigex"))
    parser.add_argument(
        "--local-images", action="store_true", help=f"build and use the images of {LOCAL_ENV}"
    )
    parser.add_argument("--env-file", type=Path, help="compose variables (images, ports)")
    parser.add_argument("--make-secret", action="store_true", help="make a missing password")
    parser.add_argument("--secret", type=Path, default=SECRET, help="the database password file")
    parser.add_argument("--volumes", action="store_true", help="down: delete the volumes too")
    parser.add_argument("--wait", type=float, default=HEALTHY_WITHIN, help="seconds for up")
    options = parser.parse_args(argv)
    try:
        if options.action == "up":  # a missing file is said before any engine is asked
            check_secret(options.secret, options.make_secret)
        os.environ["DB_PASSWORD_FILE"] = str(options.secret.resolve())
        env_file = LOCAL_ENV if options.local_images else options.env_file
        compose = Compose(find_compose(), options.project, env_file)
        if options.action == "up":
            up(compose, options.wait)
        elif options.action == "status":
            status(compose)
        else:
            done = compose.run("down", *(["-v"] if options.volumes else []))
            if done.returncode != 0:
                raise StackError(f"compose down failed: {last_line(done.stderr)}")
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as expired:
        print(f"stack: {' '.join(map(str, expired.cmd[:3]))} did not answer in "
              f"{expired.timeout:.0f} s", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
