"""PostgreSQL least privilege (issue #17), against the roles `make infra-up` made: each service's database role
cannot read another service's schema, nor write or create in it, nor make schemas or use `public`; it can use its
own schema, and its service's migrations run as it. A grant wider than that (to PUBLIC, to another role, on the
database) fails one of these."""

# ruff: noqa: S608 - the SQL names only this module's roles, schemas and a test's unique id

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local import pgroles
from deploy.simulators.fk.app import MIGRATIONS as FK_SIM_MIGRATIONS
from services.consent.app import MIGRATIONS as CONSENT_MIGRATIONS
from services.dispatch.app import MIGRATIONS as DISPATCH_MIGRATIONS
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.kit.db import SchemaNotProvisioned, migrate
from services.kit.settings import ServiceSettings
from services.portal.app import MIGRATIONS as PORTAL_MIGRATIONS
from services.stats.repo import MIGRATIONS as STATS_MIGRATIONS
from tests.harness import RolesNotProvisioned, create_schema_for, drop_schema, role_urls

pytestmark = pytest.mark.integration
ROLES = {r.role: r for r in pgroles.ROLES}
MIGRATIONS: dict[str, Path] = {
    "minaintyg_intake": INTAKE_MIGRATIONS,
    "minaintyg_consent": CONSENT_MIGRATIONS,
    "minaintyg_portal": PORTAL_MIGRATIONS,
    "minaintyg_dispatch": DISPATCH_MIGRATIONS,
    "minaintyg_stats": STATS_MIGRATIONS,
    "minaintyg_fk_sim": FK_SIM_MIGRATIONS,
}
PAIRS = [(a, b) for a in ROLES for b in ROLES if a != b]


@pytest.fixture(scope="module")
def urls(base_settings: ServiceSettings) -> dict[str, str]:
    try:
        return role_urls(base_settings.database_url)
    except RolesNotProvisioned as exc:
        pytest.fail(str(exc))


@pytest.fixture
async def probes(urls: dict[str, str], unique: str) -> AsyncIterator[str]:
    """A table `probe_<unique>` with one row in every role's own schema, made by that role; dropped afterwards."""
    table = f"probe_{unique}"
    for role, url in urls.items():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"CREATE TABLE {ROLES[role].schema}.{table} (secret text)")
            await conn.execute(f"INSERT INTO {ROLES[role].schema}.{table} VALUES ('of {role}')")
        finally:
            await conn.close()
    yield table
    for role, url in urls.items():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {ROLES[role].schema}.{table}")
        finally:
            await conn.close()


async def test_each_role_uses_its_own_schema(urls: dict[str, str], probes: str) -> None:
    for role, url in urls.items():
        schema = ROLES[role].schema
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_user") == role
            assert await conn.fetchval(f"SELECT secret FROM {schema}.{probes}") == f"of {role}"
            await conn.execute(f"UPDATE {schema}.{probes} SET secret = secret")
            await conn.execute("CREATE TEMP TABLE staging (x int)")  # the statistics stage batches in these
        finally:
            await conn.close()


@pytest.mark.parametrize(("role", "other"), PAIRS)
async def test_a_role_cannot_read_write_or_create_in_another_services_schema(
    urls: dict[str, str], probes: str, role: str, other: str
) -> None:
    theirs = ROLES[other].schema
    conn = await asyncpg.connect(urls[role])
    try:
        for statement in (
            f"SELECT secret FROM {theirs}.{probes}",
            f"INSERT INTO {theirs}.{probes} VALUES ('written by {role}')",
            f"DELETE FROM {theirs}.{probes}",
            f"CREATE TABLE {theirs}.planted (x int)",
            f"DROP TABLE {theirs}.{probes}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_no_role_may_use_a_schema_it_does_not_own_or_create_one(urls: dict[str, str], unique: str) -> None:
    for role, url in urls.items():
        conn = await asyncpg.connect(url)
        try:
            # Every schema the role may use or create in (bar the system catalogs and its temporary schemas) is its
            # own: that holds whatever other schemas exist, a test's or a service's.
            usable = await conn.fetch(
                "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace "
                "WHERE (has_schema_privilege(oid, 'USAGE') OR has_schema_privilege(oid, 'CREATE')) "
                "AND nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_temp_%' "
                "AND nspname NOT LIKE 'pg_toast%'"
            )
            assert {r["nspname"] for r in usable} >= {ROLES[role].schema}
            assert {r["owner"] for r in usable} == {role}, usable
            assert not await conn.fetchval("SELECT has_database_privilege(current_database(), 'CREATE')")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"CREATE SCHEMA t_{unique}_by_{role}")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.planted (x int)")
            attributes = await conn.fetchrow(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles "
                "WHERE rolname = current_user"
            )
            assert attributes is not None
            assert not any(attributes.values()), attributes
            members_of = await conn.fetchval(
                "SELECT count(*) FROM pg_auth_members WHERE member = (SELECT oid FROM pg_roles "
                "WHERE rolname = current_user)"
            )
            assert members_of == 0  # no role's privileges come with it
        finally:
            await conn.close()


@pytest.mark.parametrize("role", list(ROLES))
async def test_a_services_migrations_run_as_its_role_in_the_schema_made_for_it(
    base_settings: ServiceSettings, urls: dict[str, str], unique: str, role: str
) -> None:
    """The system test's and the set-up's way: the administrator makes the schema owned by the role; the service's
    migrations (kit's and its own) then run as the role, and no other role may migrate or read it."""
    schema = f"t_{unique}"
    other = next(r for r in ROLES if r != role)
    await create_schema_for(base_settings.database_url, schema, role)
    try:
        applied = await migrate(urls[role], schema, MIGRATIONS[role])
        assert applied
        assert await migrate(urls[role], schema, MIGRATIONS[role]) == []
        conn = await asyncpg.connect(urls[role])
        try:
            owners = await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
                "WHERE relnamespace = $1::regnamespace",
                schema,
            )
            assert [r["owner"] for r in owners] == [role]
        finally:
            await conn.close()
        with pytest.raises(SchemaNotProvisioned, match=f"role {other} may not create tables in schema {schema}"):
            await migrate(urls[other], schema, MIGRATIONS[other])
        conn = await asyncpg.connect(urls[other])
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
        finally:
            await conn.close()
    finally:
        await drop_schema(base_settings.database_url, schema)


async def test_a_role_cannot_make_a_schema_the_set_up_has_not(urls: dict[str, str], unique: str) -> None:
    with pytest.raises(SchemaNotProvisioned, match=f"schema t_{unique} does not exist and role minaintyg_intake"):
        await migrate(urls["minaintyg_intake"], f"t_{unique}", INTAKE_MIGRATIONS)
