"""The whole suite runs on the secured local broker (TLS, SCRAM logins, ACLs: deploy/local/kafka_security.py) as its
administrator; the tests that check a service's rights log in as that service. With KAFKA_BOOTSTRAP_SERVERS or
KAFKA_SECURITY_PROTOCOL set, the environment says which cluster and how to log in."""

from __future__ import annotations

import os

from deploy.local.infra import LOCAL_SECURITY

if not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_SECURITY_PROTOCOL")) and (
    LOCAL_SECURITY.passwords_file.exists()
):
    os.environ.update(LOCAL_SECURITY.client_environment())
