"""One namespace: the wheel installs only ``sigex``, and it lives beside PyPI's namesakes.

The design card's folders (broker/, schemas/, producers/, consumers/, policies/) are
mapped into the ``sigex`` namespace by pyproject's ``package-dir``; these tests keep that
mapping complete and show, by installing the built wheel into a fresh virtualenv next to
the PyPI packages that bear those names, that nothing collides.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
PYPI_NAMESAKES = ("broker", "schemas", "policies", "consumers")


def _folder_of(package: str) -> Path:
    mapping: dict[str, str] = SETUPTOOLS["package-dir"]
    for prefix in sorted(mapping, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            rest = package[len(prefix) :].lstrip(".").replace(".", "/")
            return REPO / mapping[prefix] / rest
    raise AssertionError(f"{package} is in no mapped folder")


def test_every_package_folder_is_listed_and_every_listed_package_exists() -> None:
    mapping: dict[str, str] = SETUPTOOLS["package-dir"]
    nested = {folder for package, folder in mapping.items() if package != "sigex"}
    on_disk = {
        ".".join([package, *init.parent.relative_to(REPO / folder).parts])
        for package, folder in mapping.items()
        for init in (REPO / folder).rglob("__init__.py")
        # sigex/ holds no card folder: those are mapped on their own
        if not (package == "sigex" and init.relative_to(REPO / folder).parts[0] in nested)
    }
    assert set(SETUPTOOLS["packages"]) == on_disk
    assert all((_folder_of(package) / "__init__.py").exists() for package in on_disk)


@pytest.mark.slow
def test_the_wheel_installs_beside_pypis_namesakes(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("sigex-*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"sigex"}

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", *PYPI_NAMESAKES], check=True)
    subprocess.run([*pip, str(wheel)], check=True)

    version = subprocess.run(
        [str(env / "bin" / "sigex"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("sigex, version")
    probe = (  # the namesakes' own dependencies are not ours to install: find, not import
        "import importlib.util\n"
        "import sigex.broker.gateway, sigex.schemas.catalogue, sigex.policies.compiler\n"
        "import sigex.consumers.subscriber, sigex.producers.publisher\n"
        "for name in ('broker', 'schemas', 'policies', 'consumers'):\n"
        "    origin = importlib.util.find_spec(name).origin\n"
        "    assert origin and '/sigex/' not in origin, origin\n"
        "assert sigex.schemas.catalogue.load_catalogue().signal('laa.frequent-mover')\n"
        "assert sigex.policies.compiler.load_policy().version\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
