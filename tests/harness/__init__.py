"""The one harness that tests and benchmarks start services with (no pytest in here, so `bench/` uses it too).

- `infra`: is the shared broker reachable, a fresh id for a schema and topic prefix, dropping both afterwards,
  a free port.
- `db`: a connection on a test's schema, the counts tests poll, and the per-service roles' URLs.
- `poll`: `eventually` (poll a check until a deadline) and `wait_ready` (the one readiness poller).
- `inprocess`: a service's `create_app(settings)` under its lifespan, with an httpx client on it.
- `process`: a service's console script as a subprocess on a free port, with its environment; a one-shot command.
- `kafka`: every record on a topic.

It is built only on what services promise to keep: `create_app(settings)`, the console scripts and `/readyz`.
"""

from tests.harness.db import RolesNotProvisioned, connect, count_rows, create_schema_for, outbox_empty, role_urls
from tests.harness.infra import (
    delete_topics_of,
    drop_schema,
    free_port,
    new_unique,
    require_broker,
    schema_name,
    topic_prefix,
)
from tests.harness.inprocess import in_process, running
from tests.harness.kafka import dead_lettered, read_topic
from tests.harness.poll import NotReady, eventually, is_ready, wait_ready
from tests.harness.process import ServiceProcess, run_command

__all__ = [
    "NotReady",
    "RolesNotProvisioned",
    "ServiceProcess",
    "connect",
    "count_rows",
    "create_schema_for",
    "dead_lettered",
    "delete_topics_of",
    "drop_schema",
    "eventually",
    "free_port",
    "in_process",
    "is_ready",
    "new_unique",
    "outbox_empty",
    "read_topic",
    "require_broker",
    "role_urls",
    "run_command",
    "running",
    "schema_name",
    "topic_prefix",
    "wait_ready",
]
