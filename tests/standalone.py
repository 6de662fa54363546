"""A real Spark standalone cluster on 127.0.0.1 for the tests: one master, two workers.

Each daemon is its own JVM, launched with the pyspark distribution's ``spark-class``,
with its own work dir and ``SPARK_LOCAL_DIRS`` under the test's temporary folder, so an
executor shares nothing with the driver but the loopback network (and this machine's
disk, which the tests take care not to rely on).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_class() -> Path:
    """``spark-class`` of the pyspark distribution the project installs."""
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@dataclass
class StandaloneCluster:
    """A master and ``workers`` workers (``cores`` cores, ``memory`` each) under ``root``."""

    root: Path
    workers: int = 2
    cores: int = 1
    memory: str = "3g"
    port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    _procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The master URL to give spark-submit."""
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([str(spark_class()), *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                start_new_session=True)
        self._procs.append(proc)

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        """Start the daemons and wait until every worker is ALIVE at the master."""
        self.root.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
        base.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(self.port), "--webui-port", str(self.ui_port)],
                    dict(base))
        for i in range(self.workers):
            work = self.root / f"worker{i}"
            (work / "work").mkdir(parents=True, exist_ok=True)
            (work / "local").mkdir(exist_ok=True)
            env = dict(base, SPARK_LOCAL_DIRS=str(work / "local"),
                       SPARK_WORKER_DIR=str(work / "work"))
            self._start(f"worker{i}", [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                "--cores", str(self.cores), "--memory", self.memory,
                "--work-dir", str(work / "work"), "--webui-port", str(free_port()),
                self.url], env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                alive = [w for w in self.status().get("workers", []) if w["state"] == "ALIVE"]
            except OSError:
                alive = []
            if len(alive) == self.workers:
                return self
            if any(p.poll() is not None for p in self._procs):
                break
            time.sleep(0.5)
        self.stop()
        logs = "\n".join((self.root / f).read_text(errors="replace")[-1500:]
                         for f in ("master.log", "worker0.log") if (self.root / f).exists())
        raise RuntimeError(f"standalone cluster did not come up:\n{logs}")

    def status(self) -> dict[str, Any]:
        """The master's JSON status (workers, active and completed applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.loads(r.read().decode())

    def applications(self) -> list[dict[str, Any]]:
        """Every application the master has seen, active or completed."""
        status = self.status()
        return list(status.get("activeapps", [])) + list(status.get("completedapps", []))

    def stop(self) -> None:
        """Stop every daemon (their process groups: executors included)."""
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
