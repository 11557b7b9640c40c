"""The whole suite runs on the secured local broker (TLS, SCRAM logins, ACLs: deploy/local/kafka_security.py) as its
administrator; the tests that check a service's rights log in as that service. With KAFKA_BOOTSTRAP_SERVERS or
KAFKA_SECURITY_PROTOCOL set, the environment says which cluster and how to log in."""

from __future__ import annotations

from deploy.local.infra import use_local_admin_login

use_local_admin_login()
