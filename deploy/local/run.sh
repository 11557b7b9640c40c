#!/usr/bin/env bash
# `make run`: connect the simulator's care units, then run every process of the Procfile under honcho.
set -euo pipefail
cd "$(dirname "$0")/../.."
minaintyg-admin care-units connect-simulated >/dev/null
cat <<MSG

  Mina intyg is starting. Ctrl-C stops everything.
    intake API      http://127.0.0.1:${INTAKE_PORT:-8001}/docs   (bearer token: dev-platform-secret)
    intake OpenAPI  http://127.0.0.1:${INTAKE_PORT:-8001}/openapi.json
    consent API     http://127.0.0.1:${CONSENT_PORT:-8002}/docs   (internal; bearer token: dev-portal-to-consent)
    dispatch        http://127.0.0.1:${DISPATCH_PORT:-8003}/docs   (send a released certificate: minaintyg-admin dispatch request ID)
    FK simulator    http://127.0.0.1:${FKSIM_PORT:-8011}/docs   (bearer token: dev-minaintyg-to-fk; faults at /sim/faults)
    metrics         http://127.0.0.1:${INTAKE_PORT:-8001}/metrics, http://127.0.0.1:${CONSENT_PORT:-8002}/metrics,
                    http://127.0.0.1:${DISPATCH_PORT:-8003}/metrics
    Kafka           ${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}

MSG
exec honcho --no-prefix -f deploy/local/Procfile start
