#!/usr/bin/env bash
# `make run`: connect the simulator's care units, then run every process of the Procfile under honcho.
set -euo pipefail
cd "$(dirname "$0")/../.."
minaintyg-admin care-units connect-simulated >/dev/null
cat <<MSG

  Mina intyg is starting. Ctrl-C stops everything.
    portal          http://127.0.0.1:${PORTAL_PORT:-8000}/   (log in with a test person at the BankID (test) page)
    portal API      http://127.0.0.1:${PORTAL_PORT:-8000}/openapi.json
    intake API      http://127.0.0.1:${INTAKE_PORT:-8001}/docs   (bearer token: dev-platform-secret)
    intake OpenAPI  http://127.0.0.1:${INTAKE_PORT:-8001}/openapi.json
    consent API     http://127.0.0.1:${CONSENT_PORT:-8002}/docs   (internal; bearer token: dev-portal-to-consent)
    BankID (test)   http://127.0.0.1:${IDPSIM_PORT:-8010}/.well-known/openid-configuration   (OIDC; test persons: /sim/persons)
    dispatch        http://127.0.0.1:${DISPATCH_PORT:-8003}/docs   (send a released certificate: minaintyg-admin dispatch request ID)
    statistics      http://127.0.0.1:${STATS_PORT:-8004}/   (dashboard; reports at /v1/reports, feed on stats.sickleave.v1)
    FK simulator    http://127.0.0.1:${FKSIM_PORT:-8011}/docs   (bearer token: dev-minaintyg-to-fk; faults at /sim/faults)
    metrics         /metrics on every service above (Prometheus); consumer lag: minaintyg-admin lag
    Kafka           ${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}

  Test persons to log in as (BankID (test) page; or type any valid personnummer):
MSG
idp-sim persons | sed 's/^/    /'
echo
# Development: the simulated citizens consent (all but those offered on the BankID (test) page), so statistics has
# data within seconds.
(minaintyg-admin stats consent-simulated --consent-url "http://127.0.0.1:${CONSENT_PORT:-8002}" >/dev/null 2>&1 &)
exec honcho --no-prefix -f deploy/local/Procfile start
