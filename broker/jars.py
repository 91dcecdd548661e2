"""Fetching Apache Kafka's jars from Maven Central into a cache outside the repository.

The first start of a local broker runs ``mvn dependency:copy-dependencies``
on a generated POM; later starts find the jars in the cache and need no
network. A download is written to a temporary folder and renamed into place
only when complete, so an interrupted fetch leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sigex.broker.errors import DownloadFailed, MavenMissing

DEFAULT_KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
_COMPLETE_MARKER = ".complete"

_POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>nl.sigex.local</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_version() -> str:
    return os.environ.get("SIGEX_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)


def cache_dir() -> Path:
    configured = os.environ.get("SIGEX_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sigex"


def jars_dir(version: str, cache: Path) -> Path:
    return cache / f"kafka-{version}" / "libs"


def is_cached(version: str, cache: Path) -> bool:
    return (jars_dir(version, cache) / _COMPLETE_MARKER).exists()


def ensure_jars(version: str | None = None, cache: Path | None = None) -> Path:
    """Return the folder of the broker's jars, fetching them with Maven the first time."""
    version = version or kafka_version()
    cache = cache or cache_dir()
    target = jars_dir(version, cache)
    if is_cached(version, cache):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenMissing(
            f"Kafka {version} is not in the cache ({target}) and 'mvn' is not on PATH: "
            "install Maven (apt-get install maven) so the first start can fetch the jars"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as work:
        work_dir = Path(work)
        (work_dir / "pom.xml").write_text(
            _POM_TEMPLATE.format(kafka=version, log4j=LOG4J_VERSION, slf4j=SLF4J_VERSION)
        )
        libs = work_dir / "libs"
        result = subprocess.run(  # noqa: S603 - fixed arguments, mvn found on PATH
            [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
            cwd=work_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            detail = _last_error_line(result.stdout + result.stderr)
            raise DownloadFailed(
                f"could not fetch Kafka {version} from Maven Central with mvn "
                f"(exit {result.returncode}): {detail}"
            )
        (libs / _COMPLETE_MARKER).write_text(version)
        if target.exists():
            shutil.rmtree(target)
        libs.rename(target)
    return target


def _last_error_line(output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if "ERROR" in line]
    if errors:
        return errors[0][:400]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "no output"
