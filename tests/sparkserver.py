"""A throwaway Spark cluster for the test suite: a standalone master, one worker and a Spark Connect
server from the pyspark wheel, started by scripts/spark_local.sh on free ports in a temp dir, stopped
by the pids it recorded (and their children) at the end, even when the tests failed.

Only the Connect server opens the embedded Derby metastore; every client goes through it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "spark_local.sh"
START_TIMEOUT = 240


@dataclass(frozen=True)
class SparkServer:
    """A running local cluster. `url` is the Spark Connect URL (`sc://127.0.0.1:PORT`)."""

    host: str
    connect_port: int
    master_url: str
    base: Path

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.connect_port}"

    @property
    def warehouse(self) -> Path:
        return self.base / "warehouse"

    def session(self) -> Any:
        """A new Spark Connect session (its own temporary views and settings)."""
        from pyspark.sql import SparkSession

        return SparkSession.builder.remote(self.url).create()


def fresh_schema(server: SparkServer, name: str) -> tuple[Any, str]:
    """A new Spark Connect session whose current schema is a new, empty one named after `name`."""
    schema = "t_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:50]
    spark = server.session()
    spark.sql(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
    spark.sql(f"CREATE SCHEMA `{schema}`")
    spark.sql(f"USE `{schema}`")
    return spark, schema


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(base: Path, ports: list[int]) -> dict[str, str]:
    master, master_ui, worker_ui, connect = ports
    return {
        **os.environ,
        "CONSENTGATE_SPARK_DIR": str(base),
        "CONSENTGATE_PYTHON": sys.executable,
        "CONSENTGATE_SPARK_MASTER_PORT": str(master),
        "CONSENTGATE_SPARK_MASTER_UI_PORT": str(master_ui),
        "CONSENTGATE_SPARK_WORKER_UI_PORT": str(worker_ui),
        "CONSENTGATE_SPARK_CONNECT_PORT": str(connect),
        "CONSENTGATE_SPARK_WORKER_CORES": "2",
        "CONSENTGATE_SPARK_WORKER_MEMORY": "2g",
        "CONSENTGATE_SPARK_DRIVER_MEMORY": "1g",
        "CONSENTGATE_SPARK_START_TIMEOUT": str(START_TIMEOUT),
    }


def _pids(base: Path) -> list[int]:
    found = []
    for f in (base / "pids").glob("*.pid"):
        with suppress(ValueError, OSError):
            found.append(int(f.read_text().strip()))
    return found


def _kill_tree(pids: list[int]) -> None:
    """SIGTERM each process and its children (a worker's executors), then SIGKILL what is left."""
    import psutil

    procs = []
    for pid in pids:
        with suppress(psutil.Error):
            p = psutil.Process(pid)
            procs.extend([p, *p.children(recursive=True)])
    for p in procs:
        with suppress(psutil.Error):
            p.send_signal(signal.SIGTERM)
    _gone, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive:
        with suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _wait_ready(server: SparkServer) -> None:
    """Until a client can run a job on the worker's executor (not only on the driver)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            spark = server.session()
            try:
                spark.range(4).repartition(2).count()
            finally:
                spark.stop()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@contextmanager
def running_server() -> Iterator[SparkServer]:
    """A new local cluster; with $CONSENTGATE_TEST_SPARK_URL (`sc://127.0.0.1:15002`, e.g. one
    scripts/spark_local.sh started), that one instead, left running (for working on Spark tests)."""
    existing = os.environ.get("CONSENTGATE_TEST_SPARK_URL")
    if existing:
        host, port = existing.removeprefix("sc://").split("/")[0].rsplit(":", 1)
        yield SparkServer(host, int(port), "", Path(tempfile.gettempdir()))
        return
    base = Path(tempfile.mkdtemp(prefix="consentgate-spark-"))
    ports = _free_ports(4)
    env = _env(base, ports)
    try:
        started = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT + 30,
        )
        if started.returncode != 0:
            logs = "\n".join(p.read_text()[-2000:] for p in (base / "logs").glob("*.out"))
            raise RuntimeError(f"spark_local.sh start failed: {started.stderr.strip()}\n{logs}")
        server = SparkServer("127.0.0.1", ports[3], f"spark://127.0.0.1:{ports[0]}", base)
        _wait_ready(server)
        yield server
    finally:
        _kill_tree(_pids(base))
        shutil.rmtree(base, ignore_errors=True)


# -- Spark's Thrift server (HiveServer2 protocol) -----------------------------------------------------

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


@dataclass(frozen=True)
class ThriftServer:
    """A running Spark Thrift server (local[2], its own warehouse and Derby metastore, not the Connect
    server's: embedded Derby allows one process)."""

    host: str
    port: int
    base: Path

    def connect(self, database: str = "default") -> Any:
        """A new PyHive connection: one Thrift session (its own temporary views and settings)."""
        from pyhive import hive

        return hive.connect(self.host, port=self.port, username="consentgate", auth="NONE", database=database)


def fresh_thrift_schema(server: ThriftServer, name: str) -> tuple[Any, str]:
    """A new SparkThriftConnection (owned: close() closes the Thrift session) whose current schema is a
    new, empty one named after `name`."""
    from consentgate.engine.spark_thrift import SparkThriftConnection

    schema = "h_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:50]
    con = SparkThriftConnection(server.connect(), owned=True)
    cur = con.cursor()
    cur.execute(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")
    cur.execute(f"CREATE SCHEMA `{schema}`")
    cur.execute(f"USE `{schema}`")
    return con, schema


def _thrift_ready(server: ThriftServer, deadline: float) -> None:
    """Until a PyHive session runs a statement; fails early when the server process is gone."""
    import psutil

    while True:
        try:
            con = server.connect()
            try:
                cur = con.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
            finally:
                con.close()
            return
        except Exception:
            pids = _pids(server.base)
            if time.monotonic() > deadline or not pids or not all(psutil.pid_exists(p) for p in pids):
                raise
            time.sleep(1)


@contextmanager
def running_thrift_server() -> Iterator[ThriftServer]:
    """A new Spark Thrift server in local[2] mode on a free port, started with the pyspark wheel's
    spark-daemon.sh, stopped by its recorded pid (and children) at the end; with
    $CONSENTGATE_TEST_SPARK_THRIFT (`127.0.0.1:10000`), that one instead, left running."""
    existing = os.environ.get("CONSENTGATE_TEST_SPARK_THRIFT")
    if existing:
        host, port = existing.rsplit(":", 1)
        yield ThriftServer(host, int(port), Path(tempfile.gettempdir()))
        return
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    base = Path(tempfile.mkdtemp(prefix="consentgate-thrift-"))
    for sub in ("pids", "logs", "conf", "warehouse", "derby"):
        (base / sub).mkdir()
    (port,) = _free_ports(1)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_IDENT_STRING": "consentgate",
        "SPARK_PID_DIR": str(base / "pids"),
        "SPARK_LOG_DIR": str(base / "logs"),
        "SPARK_CONF_DIR": str(base / "conf"),  # empty: no spark-defaults.conf from elsewhere
        "PYSPARK_PYTHON": sys.executable,
        "TZ": "UTC",
    }
    cmd = [
        "bash", str(spark_home / "sbin" / "spark-daemon.sh"), "submit", THRIFT_CLASS, "1",
        "--master", "local[2]", "--driver-memory", "1g",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.sql.catalogImplementation=hive", "--conf", "spark.sql.session.timeZone=UTC",
        "--conf", f"spark.sql.warehouse.dir={base / 'warehouse'}",
        "--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={base / 'derby' / 'metastore_db'};create=true",
        "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={base / 'derby'} -Duser.timezone=UTC",
        "--conf", "spark.sql.shuffle.partitions=4",
        "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
    ]  # fmt: skip
    try:
        started = subprocess.run(cmd, env=env, cwd=base, capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise RuntimeError(f"spark-daemon.sh submit {THRIFT_CLASS} failed: {started.stderr.strip()}")
        server = ThriftServer("127.0.0.1", port, base)
        try:
            _thrift_ready(server, time.monotonic() + START_TIMEOUT)
        except Exception as exc:
            logs = "\n".join(p.read_text()[-3000:] for p in (base / "logs").glob("*.out"))
            raise RuntimeError(f"the Spark Thrift server did not accept sessions: {exc!r}\n{logs}") from exc
        yield server
    finally:
        _kill_tree(_pids(base))
        shutil.rmtree(base, ignore_errors=True)
