"""The per-service PostgreSQL roles of the local set-up (issue #17): least privilege on a developer's machine.

Every process that keeps state has a LOGIN role of its own (contract names: `minaintyg_<service>`), which owns its
service's schema and nothing else: it may not create schemas, has no privilege on the `public` schema and none on
another service's schema, so migrations (run as that role) and the service itself touch only their own tables.
`minaintyg`, the database's owner, stays the administrator: it is a member of every service role, so tests may make
a throwaway schema for a role (`CREATE SCHEMA ... AUTHORIZATION minaintyg_intake`) and drop it afterwards.

Each role's password is generated once (`secrets.token_urlsafe`, 256 bits) and kept in
`.cache/postgres/<role>.password` (mode 0600, the directory 0700); every `minaintyg-infra up` sets the role's
password to it again, so a role made by another checkout works for this one after its set-up. Kubernetes does the
same with CloudNativePG's managed roles, one Secret per service (deploy/k8s/postgres.yaml).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
ADMIN_ROLE = DATABASE = "minaintyg"  # the database's owner (deploy/local/infra.py makes it)


@dataclass(frozen=True)
class ServiceRole:
    """One process's role: its name, the schema it owns and the prefix of its `<PREFIX>DATABASE_URL`."""

    role: str
    schema: str
    env_prefix: str

    def __post_init__(self) -> None:
        # The names are interpolated into SQL: plain lower-case identifiers only.
        for name in (self.role, self.schema):
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
                raise ValueError(f"not a plain identifier: {name!r}")


# Contract (issue #17): one role per service and per simulator that keeps state (the FK simulator's receipts).
# The schemas are the services' default `db_schema` (a test holds them to the settings classes).
ROLES = (
    ServiceRole("minaintyg_intake", "intake", "INTAKE_"),
    ServiceRole("minaintyg_consent", "consent", "CONSENT_"),
    ServiceRole("minaintyg_portal", "portal", "PORTAL_"),
    ServiceRole("minaintyg_dispatch", "dispatch", "DISPATCH_"),
    ServiceRole("minaintyg_stats", "stats", "STATS_"),
    ServiceRole("minaintyg_fk_sim", "fk_sim", "FKSIM_"),
)


def role_of(env_prefix: str) -> ServiceRole:
    """The role of the process whose settings have this env prefix."""
    return next(r for r in ROLES if r.env_prefix == env_prefix)


def password_file(role: str, cache: Path = CACHE) -> Path:
    return cache / "postgres" / f"{role}.password"


def password(role: str, cache: Path = CACHE) -> str:
    """The role's password, generated and written (0600) the first time."""
    path = password_file(role, cache)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another set-up wrote it at the same moment: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def stored_password(role: str, cache: Path = CACHE) -> str | None:
    """The role's password if the set-up has made it, else None (nothing is generated)."""
    path = password_file(role, cache)
    return path.read_text().strip() if path.exists() else None


def database_url(role: str, secret: str, *, host: str = "127.0.0.1", port: int | str = 5432) -> str:
    """The URL a service connects with as `role` (loopback: no TLS)."""
    return f"postgresql://{role}:{quote(secret, safe='')}@{host}:{port}/{DATABASE}?sslmode=disable"


def scram_verifier(secret: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `secret` (RFC 5803's form): the server is given this, never
    the password itself, so neither its log nor psql's error output can show one."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def _literal(value: str) -> str:
    """A SQL string literal (the passwords are URL-safe base64, the names constants: quoting is belt and braces)."""
    return "'" + value.replace("'", "''") + "'"


def provisioning_sql(passwords: dict[str, str], roles: tuple[ServiceRole, ...] = ROLES) -> str:
    """The idempotent script a superuser runs in the database: the roles, their schemas, and nothing more for them.

    An existing schema (one made before the roles, by the administrator) is handed to its role with everything in
    it, so migrations keep working as the service's role."""
    statements = [
        "SET client_min_messages = warning",  # not "already exists, skipping" on every run
        # Nobody but the owner and the roles granted below may connect or make temporary tables; nobody may use or
        # create in `public` (PostgreSQL 15 already refuses CREATE there; USAGE goes too).
        f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
    ]
    for r in roles:
        role, schema = r.role, r.schema
        statements += [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) THEN "
            f"CREATE ROLE {role}; END IF; END $$",
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            f"PASSWORD {_literal(scram_verifier(passwords[role]))}",
            # CONNECT, and TEMPORARY for the statistics' staging tables; not CREATE: no schema of its own making.
            f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO {role}",
            f"GRANT {role} TO {ADMIN_ROLE}",
            f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}",
            f"ALTER SCHEMA {schema} OWNER TO {role}",
            f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
            _hand_over(schema, role),
        ]
    return ";\n".join(statements) + ";\n"


def _hand_over(schema: str, role: str) -> str:
    """Tables, views and free-standing sequences (a serial's goes with its table) of `schema` to `role`."""
    return f"""DO $$
DECLARE object record;
BEGIN
  FOR object IN
    SELECT c.oid::regclass AS name FROM pg_class c
    WHERE c.relnamespace = {_literal(schema)}::regnamespace AND c.relowner <> {_literal(role)}::regrole
      AND (c.relkind IN ('r', 'p', 'v', 'm')
           OR (c.relkind = 'S' AND NOT EXISTS (
                 SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                 AND d.deptype IN ('a', 'i'))))
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', object.name, {_literal(role)});
  END LOOP;
END $$"""  # noqa: S608 - the names are this module's checked constants


def provision(psql: list[str], run: Callable[..., Any], cache: Path = CACHE) -> None:
    """Make or update every role and schema (`psql`: a superuser's psql command), its password from `cache`."""
    passwords = {r.role: password(r.role, cache) for r in ROLES}
    script = provisioning_sql(passwords)
    run([*psql, "-d", DATABASE, "--single-transaction", "-f", "-"], input=script, stdout=subprocess.DEVNULL)


def service_env(cache: Path = CACHE, *, port: int | str = 5432) -> dict[str, str]:
    """`<PREFIX>DATABASE_URL` of every role the set-up has made (none before `minaintyg-infra up`)."""
    env = {}
    for r in ROLES:
        secret = stored_password(r.role, cache)
        if secret is not None:
            env[f"{r.env_prefix}DATABASE_URL"] = database_url(r.role, secret, port=port)
    return env


def main() -> None:
    """`python -m deploy.local.pgroles env`: shell exports of each service's own database URL (deploy/local/run.sh)."""
    if sys.argv[1:] != ["env"]:
        sys.exit("usage: python -m deploy.local.pgroles env")
    for name, value in service_env().items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
