"""Lay the sigex namespace out as mypy must see it, in .typecheck/, from pyproject's package-dir.

The design card keeps broker/, schemas/, producers/, consumers/ and policies/ at the top
of the repository, and setuptools maps them into the one namespace (sigex.broker is
broker/). Python follows that mapping when it imports; mypy cannot, it finds modules by
directory. So ``make lint`` first builds .typecheck/sigex/: symbolic links that mirror the
installed package (sigex's own entries, and broker/ as sigex/broker/, ...), which mypy
then checks. The links point at the real files; the tree holds no copies and is rebuilt
on every run.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path


def build(root: Path) -> Path:
    """(Re)build ``root/.typecheck`` and return it."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    tree = root / ".typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    namespace = tree / "sigex"
    namespace.mkdir(parents=True)
    for entry in (root / mapping["sigex"]).iterdir():
        if entry.name != "__pycache__":
            (namespace / entry.name).symlink_to(entry.resolve())
    for package, folder in mapping.items():
        if package != "sigex":
            (tree / package.replace(".", "/")).symlink_to((root / folder).resolve())
    return tree


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
