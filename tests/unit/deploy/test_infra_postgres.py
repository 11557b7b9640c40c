"""`minaintyg-infra up` while PostgreSQL restarts: it waits for the cluster instead of aborting before Kafka."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from deploy.local import infra

PID_EXISTS = "Error: postmaster.pid already exists; cluster is being restarted"


class FakeCluster:
    """pg_lsclusters / pg_ctlcluster of a cluster that goes through the given states, one per call."""

    def __init__(self, statuses: list[str], start_fails: int) -> None:
        self.statuses = statuses
        self.start_fails = start_fails
        self.starts = 0
        self.commands: list[list[str]] = []

    def clusters(self) -> list[list[str]]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return [["15", "main", "5432", status, "postgres", "/var/lib/postgresql/15/main"]]

    def run(self, cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(cmd)
        if "pg_ctlcluster" in cmd:
            self.starts += 1
            if self.starts <= self.start_fails:
                raise subprocess.CalledProcessError(1, cmd, stderr=PID_EXISTS)
        return subprocess.CompletedProcess(cmd, 0, stdout="1\n", stderr="")


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)


def test_a_cluster_being_restarted_is_started_once_its_pid_file_is_gone(
    monkeypatch: pytest.MonkeyPatch, no_waiting: None
) -> None:
    cluster = FakeCluster(statuses=["down"], start_fails=2)
    monkeypatch.setattr(infra, "run", cluster.run)
    monkeypatch.setattr(infra, "_clusters", cluster.clusters)
    assert infra.start_cluster("15", "main") is True
    assert cluster.starts == 3


def test_a_cluster_that_comes_up_by_itself_is_not_started_again(
    monkeypatch: pytest.MonkeyPatch, no_waiting: None
) -> None:
    cluster = FakeCluster(statuses=["down", "online,recovery"], start_fails=99)
    monkeypatch.setattr(infra, "run", cluster.run)
    monkeypatch.setattr(infra, "_clusters", cluster.clusters)
    assert infra.start_cluster("15", "main") is False


def test_a_cluster_that_never_starts_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, no_waiting: None) -> None:
    cluster = FakeCluster(statuses=["down"], start_fails=99)
    monkeypatch.setattr(infra, "run", cluster.run)
    monkeypatch.setattr(infra, "_clusters", cluster.clusters)
    with pytest.raises(infra.InfraError, match=r"postmaster\.pid already exists"):
        infra.start_cluster("15", "main", deadline_seconds=0)


def test_a_recovering_cluster_counts_as_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    cluster = FakeCluster(statuses=["online,recovery"], start_fails=0)
    monkeypatch.setattr(infra, "run", cluster.run)
    monkeypatch.setattr(infra, "_clusters", cluster.clusters)
    monkeypatch.setattr(infra, "CACHE", tmp_path)
    monkeypatch.setattr("shutil.which", lambda _name: "/usr/bin/pg_lsclusters")
    waited: list[str] = []
    monkeypatch.setattr(infra, "wait_accepting", waited.append)
    infra.postgres_up()
    assert cluster.starts == 0
    assert waited == ["5432"]
