"""`minaintyg-infra up|down|status`: the local broker and database, idempotent.

Kafka: the official org.apache.kafka:kafka_2.13 artifacts fetched from Maven Central with `mvn` into .cache/, run in
KRaft mode (one combined broker/controller node) on the machine's Java 17 with a bounded heap, on 127.0.0.1, secured:
TLS, SCRAM-SHA-512 logins and ACLs, one principal per service (deploy/local/kafka_security.py).
PostgreSQL: the machine's Debian cluster (installed if missing), with a `minaintyg` role and database.
With KAFKA_BOOTSTRAP_SERVERS and/or DATABASE_URL set, that part is left to whoever set them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local.kafka_security import LocalSecurity, provision
from schemas.kafka_access import ADMIN_PRINCIPAL, PRINCIPALS

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
POM = ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = ROOT / "deploy" / "kafka" / "log4j2.properties"
DB_NAME = DB_USER = DB_PASSWORD = "minaintyg"  # noqa: S105 - the local development database
LOCAL_SECURITY = LocalSecurity(CACHE / "kafka" / "security", CACHE / "tls")


def use_local_admin_login() -> None:
    """Log this process's Kafka clients in to the secured local brokers as `admin` (the tests, the benchmarks),
    unless KAFKA_BOOTSTRAP_SERVERS or KAFKA_SECURITY_PROTOCOL say which cluster and how to log in."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_SECURITY_PROTOCOL"):
        return
    if LOCAL_SECURITY.passwords_file.exists():
        os.environ.update(LOCAL_SECURITY.client_environment())


class InfraError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"[infra] {message}", flush=True)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def apt_install(*packages: str) -> None:
    say(f"installing Debian packages: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([*_sudo(), "apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    run(
        [*_sudo(), "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- Kafka ------------------------------------------------------------------------------------------------


def ensure_java_and_maven() -> None:
    if shutil.which("java") is None:
        apt_install("openjdk-17-jre-headless")
    if shutil.which("mvn") is None:
        apt_install("maven")


def kafka_libs() -> Path:
    """The broker's jars, fetched once per version of deploy/kafka/pom.xml."""
    libs = CACHE / "kafka" / "libs"
    marker = libs / f".complete-{hashlib.sha256(POM.read_bytes()).hexdigest()[:16]}"
    if marker.exists():
        return libs
    ensure_java_and_maven()
    say("fetching Apache Kafka from Maven Central (once)")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ]
    )
    marker.touch()
    return libs


@dataclass(frozen=True)
class KafkaNode:
    """One KRaft node (broker and controller) with its data, logs and pid file under `home`."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    node_id: int = 1
    # Cluster mode: every voter of the controller quorum ("1@127.0.0.1:19092,..."); one node is its own quorum.
    voters: str | None = None
    replication: int = 1
    cluster_id_file: Path | None = None
    # TLS, SCRAM logins and ACLs (every node of this machine shares the material); None: a plaintext node, for a
    # benchmark's unsecured baseline only.
    security: LocalSecurity | None = LOCAL_SECURITY

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    def _listeners(self) -> list[str]:
        if self.security is not None:
            return self.security.broker_properties(self.port, self.controller_port)
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.security is not None else "PLAINTEXT"

    def client_options(self) -> dict[str, Any]:
        """aiokafka's arguments to reach this node as the administrator."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.security is not None:
            options.update(self.security.aiokafka_options())
        return options

    def _config(self) -> Path:
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters or f'{self.node_id}@127.0.0.1:{self.controller_port}'}",
                    "controller.listener.names=CONTROLLER",
                    *self._listeners(),
                    f"log.dirs={self.home / 'data'}",
                    "num.partitions=6",
                    f"offsets.topic.replication.factor={self.replication}",
                    "offsets.topic.num.partitions=6",
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={self.min_insync}",
                    f"share.coordinator.state.topic.replication.factor={self.replication}",
                    f"share.coordinator.state.topic.min.isr={self.min_insync}",
                    f"default.replication.factor={self.replication}",
                    f"min.insync.replicas={self.min_insync}",
                    "unclean.leader.election.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    # The log cleaner allocates its dedupe buffer (128 MiB by default) from the heap at start: with a
                    # 256 MiB heap that is an OutOfMemoryError that kills the node now and then. A sixteenth of the
                    # heap still holds the keys of ~700,000 records per cleaning (24 bytes each).
                    f"log.cleaner.dedupe.buffer.size={self.cleaner_buffer_bytes}",
                    "",
                ]
            )
        )
        return config

    @property
    def cleaner_buffer_bytes(self) -> int:
        """The log cleaner's dedupe buffer: a sixteenth of the heap, at most Kafka's default of 128 MiB."""
        units = {"k": 2**10, "m": 2**20, "g": 2**30}
        size = self.heap.strip().lower()
        heap = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        return min(128 * 2**20, heap // 16)

    @property
    def min_insync(self) -> int:
        """A write is acknowledged by two replicas of three (one node: by itself)."""
        return 2 if self.replication >= 3 else 1

    def cluster_id(self) -> str:
        """One node formats with a new id; the nodes of a cluster share the id kept in `cluster_id_file`."""
        if self.cluster_id_file is None:
            return _cluster_id()
        if not self.cluster_id_file.exists():
            self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
            self.cluster_id_file.write_text(_cluster_id())
        return self.cluster_id_file.read_text().strip()

    def pid(self) -> int | None:
        """The broker's pid while it runs."""
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child that exited, or it would linger as a zombie
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        return pid

    def _java(self, libs: Path, *args: str) -> list[str]:
        return [
            "java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.home / 'logs'}", f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp", f"{libs}/*", *args,
        ]  # fmt: skip

    def start(self, deadline_seconds: float = 90.0) -> None:
        """Start the node unless it runs, and wait until it answers metadata requests."""
        self.launch()
        self.wait_ready(deadline_seconds)

    def launch(self) -> None:
        """Start the node's process unless it runs (a cluster's node answers only once a quorum of voters runs)."""
        if self.pid() is not None:
            return
        if port_open("127.0.0.1", self.port):
            raise InfraError(f"port {self.port} is taken by another process; set KAFKA_BOOTSTRAP_SERVERS to use it")
        libs = kafka_libs()
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        if self.security is not None:
            self.security.ensure()
        config = self._config()
        data, marker = self.home / "data", self.home / "listener-protocol"
        if (data / "meta.properties").exists() and (marker.read_text() if marker.exists() else "PLAINTEXT") != (
            self.protocol
        ):
            # The super users' logins are written when the storage is formatted: a node formatted for another
            # protocol starts again empty (development data; `make infra-down` keeps nothing else).
            say(f"Kafka data in {data} was formatted for another listener protocol: formatting it for {self.protocol}")
            shutil.rmtree(data)
        if not (data / "meta.properties").exists():
            scram = self.security.format_arguments() if self.security is not None else []
            run(self._java(libs, "kafka.tools.StorageTool", "format", f"--cluster-id={self.cluster_id()}",
                           "-c", str(config), *scram), stdout=subprocess.DEVNULL)  # fmt: skip
            marker.write_text(self.protocol)
        with open(self.home / "logs" / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        say(f"Kafka starting on {self.bootstrap} (pid {process.pid})")

    def wait_ready(self, deadline_seconds: float) -> None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            if port_open("127.0.0.1", self.port) and asyncio.run(_kafka_answers(self.client_options())):
                say(f"Kafka ready on {self.bootstrap}")
                return
            time.sleep(0.5)
        tail = self.log_file.read_text(errors="replace").splitlines()[-40:] if self.log_file.exists() else []
        raise InfraError("Kafka did not become ready; last lines of its log:\n" + "\n".join(tail))

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        say(f"Kafka on {self.bootstrap} stopped")

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP: the node stays a member but stops answering (loses leadership), for fault tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


@dataclass(frozen=True)
class KafkaCluster:
    """Three KRaft nodes on 127.0.0.1 (brokers 9092-9094, a three-voter controller quorum on 19092-19094), topics
    replicated three times with `min.insync.replicas` 2 and no unclean leader election."""

    home: Path
    size: int = 3
    first_port: int = 9092
    first_controller_port: int = 19092
    heap: str = "512m"
    security: LocalSecurity | None = LOCAL_SECURITY

    @property
    def nodes(self) -> list[KafkaNode]:
        voters = ",".join(f"{i}@127.0.0.1:{self.first_controller_port + i - 1}" for i in range(1, self.size + 1))
        return [
            KafkaNode(
                self.home / f"node-{i}",
                port=self.first_port + i - 1,
                controller_port=self.first_controller_port + i - 1,
                heap=self.heap,
                node_id=i,
                voters=voters,
                replication=self.size,
                cluster_id_file=self.home / "cluster-id",
                security=self.security,
            )
            for i in range(1, self.size + 1)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def client_options(self) -> dict[str, Any]:
        """aiokafka's arguments to reach the cluster as the administrator."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.security is not None:
            options.update(self.security.aiokafka_options())
        return options

    def client_environment(self) -> dict[str, str]:
        """The settings of a process that reaches the cluster as the administrator."""
        if self.security is None:
            return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **self.security.client_environment()}

    def start(self, deadline_seconds: float = 120.0) -> None:
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready(deadline_seconds)
        say(f"Kafka cluster of {self.size} ready: KAFKA_BOOTSTRAP_SERVERS={self.bootstrap} KAFKA_REPLICATION_FACTOR=3")

    def stop(self) -> None:
        for node in self.nodes:
            node.resume()  # a paused node cannot act on SIGTERM
            node.stop()


def _cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


async def _kafka_answers(options: dict[str, Any]) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**options, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


LOCAL_KAFKA = KafkaNode(CACHE / "kafka" / "node")
LOCAL_CLUSTER = KafkaCluster(CACHE / "kafka" / "cluster")


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else ["sudo", "-u", "postgres", *cmd]


def _clusters() -> list[list[str]]:
    out = run(["pg_lsclusters", "--no-header"], capture_output=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def start_cluster(version: str, name: str, deadline_seconds: float = 60.0) -> bool:
    """Start the cluster; True if this call started it. A cluster in the middle of a restart (its postmaster.pid
    still there, so `pg_ctlcluster start` refuses) is waited for until it is online, or startable again."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            run([*_sudo(), "pg_ctlcluster", version, name, "start"], capture_output=True)
            return True
        except subprocess.CalledProcessError as exc:
            status = next((c[3] for c in _clusters() if c[:2] == [version, name]), "unknown")
            if status.startswith("online"):
                say(f"PostgreSQL {version}/{name} came up by itself (it was restarting)")
                return False
            if time.monotonic() > deadline:
                raise InfraError(f"PostgreSQL {version}/{name} does not start: {(exc.stderr or '').strip()}") from exc
            say(f"PostgreSQL {version}/{name} is {status}; waiting to start it ({(exc.stderr or '').strip()})")
            time.sleep(1.0)


def wait_accepting(port: str, deadline_seconds: float = 60.0) -> None:
    """Until PostgreSQL accepts connections on 127.0.0.1 (a listening server may still be recovering)."""
    deadline = time.monotonic() + deadline_seconds
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", port], check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise InfraError(f"PostgreSQL does not accept connections on 127.0.0.1:{port}")
        time.sleep(0.2)


def postgres_up() -> None:
    """Start the machine's PostgreSQL cluster (installing it if missing) and create our role and database."""
    if shutil.which("pg_lsclusters") is None:
        apt_install("postgresql")
    clusters = _clusters()
    if not clusters:
        version = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir())[-1]
        run([*_sudo(), "pg_createcluster", version, "main", "--port", "5432"], stdout=subprocess.DEVNULL)
        clusters = _clusters()
    version, name, port, status = clusters[0][:4]
    # "online,recovery" right after an immediate restart is up already: starting it again fails.
    if not status.startswith("online") and start_cluster(version, name):
        (CACHE / "postgres-started-by-us").write_text(f"{version} {name}\n")
        say(f"PostgreSQL {version}/{name} started on port {port}")
    wait_accepting(port)
    psql = _as_postgres(["psql", "-p", port, "-v", "ON_ERROR_STOP=1", "-qtA"])
    # The names are constants of this module, not input: interpolating them is safe.
    exists = run([*psql, "-c", f"SELECT 1 FROM pg_roles WHERE rolname = '{DB_USER}'"], capture_output=True)  # noqa: S608
    if exists.stdout.strip() != "1":
        run([*psql, "-c", f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}'"])
    exists = run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"], capture_output=True)  # noqa: S608
    if exists.stdout.strip() != "1":
        run([*psql, "-c", f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}"])
    # One role per service, owning its schema and nothing else (issue #17); `minaintyg` stays the administrator.
    from deploy.local import pgroles

    pgroles.provision(psql, run, CACHE)
    say(f"PostgreSQL ready: postgresql://{DB_USER}:***@127.0.0.1:{port}/{DB_NAME}")
    say(f"PostgreSQL roles, each owning its schema: {', '.join(r.role for r in pgroles.ROLES)} (.cache/postgres)")


def postgres_down() -> None:
    marker = CACHE / "postgres-started-by-us"
    if marker.exists():
        version, name = marker.read_text().split()
        run([*_sudo(), "pg_ctlcluster", version, name, "stop"])
        marker.unlink()
        say(f"PostgreSQL {version}/{name} stopped")


# --- CLI --------------------------------------------------------------------------------------------------


def up() -> None:
    """Bring up what the environment does not already provide."""
    CACHE.mkdir(exist_ok=True)
    if os.environ.get("DATABASE_URL"):
        say("DATABASE_URL is set: using that PostgreSQL")
    else:
        postgres_up()
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        say("KAFKA_BOOTSTRAP_SERVERS is set: using that Kafka")
    else:
        LOCAL_KAFKA.start()
        _provision(LOCAL_KAFKA.bootstrap)


def _provision(bootstrap: str) -> None:
    grants, removed = provision(LOCAL_SECURITY, bootstrap)
    say(f"Kafka principals and ACLs provisioned: {grants} grants for {', '.join(PRINCIPALS)}; {removed} stale removed")


def cluster_up() -> None:
    """PostgreSQL as for `up`, and the three-node Kafka cluster instead of the one node."""
    CACHE.mkdir(exist_ok=True)
    if os.environ.get("DATABASE_URL"):
        say("DATABASE_URL is set: using that PostgreSQL")
    else:
        postgres_up()
    if LOCAL_KAFKA.pid() is not None:
        raise InfraError("the one-node Kafka runs on 9092-9093: `make infra-down` first (the cluster uses 9092-9094)")
    LOCAL_CLUSTER.start()
    _provision(LOCAL_CLUSTER.bootstrap)


def cluster_down() -> None:
    LOCAL_CLUSTER.stop()


def down() -> None:
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        LOCAL_KAFKA.stop()
    if not os.environ.get("DATABASE_URL"):
        postgres_down()


def status() -> None:
    for node in [LOCAL_KAFKA, *LOCAL_CLUSTER.nodes]:
        pid = node.pid()
        if pid or node is LOCAL_KAFKA:
            state = f"running, pid {pid}" if pid else "not running"
            say(f"Kafka node {node.home.name}: {state} ({node.bootstrap})")
    say(f"PostgreSQL: {'listening' if port_open('127.0.0.1', 5432) else 'not listening'} on 127.0.0.1:5432")


def environment(principal: str) -> None:
    """Print the exports a client of the local brokers needs as `principal` (`eval "$(minaintyg-infra env NAME)"`)."""
    import shlex

    if principal not in (ADMIN_PRINCIPAL, *PRINCIPALS):
        raise InfraError(f"no Kafka principal {principal!r}; known: {', '.join((ADMIN_PRINCIPAL, *PRINCIPALS))}")
    LOCAL_SECURITY.ensure()
    for name, value in LOCAL_SECURITY.client_environment(principal).items():
        print(f"export {name}={shlex.quote(value)}")


def login(principal: str) -> None:
    """Print `KAFKA_SASL_USERNAME=… KAFKA_SASL_PASSWORD=…` of a service's principal for `env` in the Procfile, when
    `make run` uses the local brokers (MINAINTYG_KAFKA_LOGINS=local); else nothing (the environment has the login)."""
    if os.environ.get("MINAINTYG_KAFKA_LOGINS") != "local":
        return
    if principal not in PRINCIPALS:
        raise InfraError(f"no service principal {principal!r}; known: {', '.join(PRINCIPALS)}")
    environment = LOCAL_SECURITY.client_environment(principal)
    print(" ".join(f"{name}={environment[name]}" for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")))


def main() -> None:
    """Entry point of `minaintyg-infra`."""
    parser = argparse.ArgumentParser(prog="minaintyg-infra", description=__doc__.splitlines()[0])
    commands = {
        "up": up,
        "down": down,
        "status": status,
        "fetch-kafka": kafka_libs,
        "cluster-up": cluster_up,
        "cluster-down": cluster_down,
    }
    parser.add_argument("command", choices=[*commands, "env", "login"])
    parser.add_argument("principal", nargs="?", default=ADMIN_PRINCIPAL, help="env, login: whose (default admin)")
    args = parser.parse_args()
    try:
        if args.command == "env":
            environment(args.principal)
        elif args.command == "login":
            login(args.principal)
        else:
            commands[args.command]()
    except (InfraError, subprocess.CalledProcessError) as exc:
        print(f"[infra] failed: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
