"""The local set-up's per-service PostgreSQL roles (deploy/local/pgroles.py): the contract names, the services'
schemas, passwords kept privately, and a provisioning script that grants nothing beyond each role's own schema.
(tests/integration/across/test_database_roles.py holds the real database to it.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from deploy.local import infra, pgroles
from deploy.settings_reference import console_scripts, settings_of

CONTRACT = {"minaintyg_intake", "minaintyg_consent", "minaintyg_portal", "minaintyg_dispatch", "minaintyg_stats"}


def stateful_settings() -> dict[str, type[BaseSettings]]:
    """Env prefix → settings class of every console script whose process keeps state in PostgreSQL."""
    found = {}
    for command in console_scripts():
        settings = settings_of(command)
        if settings is not None and "db_schema" in settings.model_fields:
            found[str(settings.model_config.get("env_prefix"))] = settings
    return found


def test_one_role_per_service_and_stateful_simulator_named_by_the_contract() -> None:
    assert {r.role for r in pgroles.ROLES} >= CONTRACT
    processes = stateful_settings()
    assert sorted(processes) == sorted(r.env_prefix for r in pgroles.ROLES)
    for role in pgroles.ROLES:
        settings = processes[role.env_prefix]
        assert settings.model_fields["db_schema"].default == role.schema, role
        assert role.role == f"minaintyg_{role.schema}"


@pytest.mark.parametrize("prefix", sorted(stateful_settings()))
def test_each_process_reads_its_own_database_url_before_the_shared_one(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stateful_settings()[prefix]
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/minaintyg")
    assert settings().database_url == "postgresql://shared@db/minaintyg"  # type: ignore[attr-defined]
    monkeypatch.setenv(f"{prefix}DATABASE_URL", "postgresql://own@db/minaintyg")
    assert settings().database_url == "postgresql://own@db/minaintyg"  # type: ignore[attr-defined]


def test_a_password_is_generated_once_and_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = pgroles.password("minaintyg_intake", tmp_path)
    assert len(first) >= 43  # 32 random bytes, URL-safe base64
    assert pgroles.password("minaintyg_intake", tmp_path) == first
    assert pgroles.password("minaintyg_consent", tmp_path) != first
    path = pgroles.password_file("minaintyg_intake", tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_services_urls_are_those_of_the_roles_made(tmp_path: Path) -> None:
    assert pgroles.service_env(tmp_path) == {}
    secret = pgroles.password("minaintyg_stats", tmp_path)
    assert pgroles.service_env(tmp_path) == {
        "STATS_DATABASE_URL": f"postgresql://minaintyg_stats:{secret}@127.0.0.1:5432/minaintyg?sslmode=disable"
    }


def test_the_scram_verifier_is_rfc_7677s() -> None:
    """RFC 7677's example exchange (user "user", password "pencil"): the server signature computed from our
    verifier's ServerKey is the one the RFC gives, and the client's proof checks against our StoredKey."""
    salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
    verifier = pgroles.scram_verifier("pencil", salt=base64.b64decode(salt))
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    assert rest.startswith(f"4096:{salt}$")
    stored_key, server_key = (base64.b64decode(k) for k in rest.split("$")[1].split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s={salt},i=4096,c=biws,r={nonce}".encode()
    signature = base64.b64encode(hmac.digest(server_key, auth, "sha256")).decode()
    assert signature == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, hmac.digest(stored_key, auth, "sha256"), strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_the_script_grants_each_role_its_schema_only_and_never_holds_a_password() -> None:
    passwords = {r.role: f"secret-of-{r.role}" for r in pgroles.ROLES}
    script = pgroles.provisioning_sql(passwords)
    assert not any(secret in script for secret in passwords.values())
    statements = [s.strip() for s in script.split(";\n")]
    assert "REVOKE ALL ON DATABASE minaintyg FROM PUBLIC" in statements
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in statements
    grants = [s for s in statements if s.startswith("GRANT")]
    for role in pgroles.ROLES:
        assert f"GRANT CONNECT, TEMPORARY ON DATABASE minaintyg TO {role.role}" in grants
        assert f"CREATE SCHEMA IF NOT EXISTS {role.schema} AUTHORIZATION {role.role}" in statements
        (alter,) = (s for s in statements if s.startswith(f"ALTER ROLE {role.role} "))
        assert "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$" in alter
    # Nothing else is granted to anyone: the administrator's memberships, and each role's CONNECT and TEMPORARY.
    expected = {f"GRANT {r.role} TO minaintyg" for r in pgroles.ROLES} | {
        f"GRANT CONNECT, TEMPORARY ON DATABASE minaintyg TO {r.role}" for r in pgroles.ROLES
    }
    assert set(grants) == expected


def test_a_name_that_is_not_a_plain_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        pgroles.ServiceRole("minaintyg_x; DROP ROLE postgres", "x", "X_")


def test_infra_up_provisions_the_roles_as_the_superuser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    commands: list[tuple[list[str], Any]] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append((cmd, kwargs.get("input")))
        return subprocess.CompletedProcess(cmd, 0, stdout="1\n", stderr="")

    monkeypatch.setattr(infra, "run", run)
    monkeypatch.setattr(infra, "_clusters", lambda: [["15", "main", "5432", "online"]])
    monkeypatch.setattr(infra, "CACHE", tmp_path)
    monkeypatch.setattr(infra, "wait_accepting", lambda _port: None)
    monkeypatch.setattr("shutil.which", lambda _name: "/usr/bin/pg_lsclusters")
    infra.postgres_up()
    scripts = [(cmd, script) for cmd, script in commands if script]
    assert len(scripts) == 1
    cmd, script = scripts[0]
    assert cmd[:4] in (["runuser", "-u", "postgres", "--"], ["sudo", "-u", "postgres", "psql"])
    assert cmd[-5:-2] == ["-d", "minaintyg", "--single-transaction"]
    for role in pgroles.ROLES:
        assert f"ALTER ROLE {role.role} WITH LOGIN" in script
        assert pgroles.password_file(role.role, tmp_path).exists()
