#!/usr/bin/env bash
# `make run`: connect the simulator's care units, then run every process of the Procfile under honcho.
set -euo pipefail
cd "$(dirname "$0")/../.."
procfile=deploy/local/Procfile
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ -z "${KAFKA_SECURITY_PROTOCOL:-}" ]; then
  # The local brokers: TLS (the development CA) and a SCRAM login per service; each process of the Procfile logs in
  # as its own principal (`minaintyg-infra login NAME`), none as the administrator (only the set-up commands below).
  eval "$(minaintyg-infra env admin)"
  export MINAINTYG_KAFKA_LOGINS=local
fi
if [ -n "${CLUSTER:-}" ]; then
  # Three Kafka nodes (`make cluster-up`), topics replicated three times; two replicas of every service that may
  # have two (the statistics ingest is one; a second stats process serves reports only).
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094" KAFKA_REPLICATION_FACTOR=3
  procfile=deploy/local/Procfile.cluster
fi
# Each service (and the FK simulator) connects as its own PostgreSQL role, which owns its schema and nothing else
# (`minaintyg-infra up` made them: deploy/local/pgroles.py); with a DATABASE_URL of your own, that URL for all.
if [ -z "${DATABASE_URL:-}" ]; then
  roles="$(python -m deploy.local.pgroles env)"  # (an assignment, so set -e stops on a failure)
  eval "$roles"
fi
minaintyg-admin care-units connect-simulated >/dev/null
# The development CA and its certificates (.cache/tls): intake's RIV-TA listener and the platform's function
# certificate, created once with the `cryptography` package.
tls="$(python -m deploy.local.devca .cache/tls)"
export INTAKE_RIV_TLS_CERT_FILE="$tls/intake.pem" INTAKE_RIV_TLS_KEY_FILE="$tls/intake-key.pem" \
  INTAKE_RIV_CLIENT_CA_FILE="$tls/ca.pem"
# Försäkringskassan's fetch from the portal (ListCertificatesForCitizen, GetCertificate) with FK's certificate.
export PORTAL_RIV_TLS_CERT_FILE="$tls/portal.pem" PORTAL_RIV_TLS_KEY_FILE="$tls/portal-key.pem" \
  PORTAL_RIV_CLIENT_CA_FILE="$tls/ca.pem"
# Dispatch sends to Försäkringskassan over RIV-TA (RegisterCertificate v3) with Mina intyg's certificate; the
# simulator receives it on its mutual-TLS listener.
export FKSIM_RIV_TLS_CERT_FILE="$tls/fk.pem" FKSIM_RIV_TLS_KEY_FILE="$tls/fk-key.pem" FKSIM_RIV_CLIENT_CA_FILE="$tls/ca.pem"
export DISPATCH_FK_ADAPTER="${DISPATCH_FK_ADAPTER:-fk-riv}" DISPATCH_RIV_CA_FILE="$tls/ca.pem" \
  DISPATCH_RIV_CLIENT_CERT_FILE="$tls/minaintyg.pem" DISPATCH_RIV_CLIENT_KEY_FILE="$tls/minaintyg-key.pem"
cat <<MSG

  Mina intyg is starting. Ctrl-C stops everything.
    portal          http://127.0.0.1:${PORTAL_PORT:-8000}/   (log in with a test person at the BankID (test) page)
    portal API      http://127.0.0.1:${PORTAL_PORT:-8000}/openapi.json
    intake RIV-TA   https://127.0.0.1:${INTAKE_RIV_PORT:-8443}/riv/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21?wsdl
                    (mutual TLS: CA .cache/tls/ca.pem, client .cache/tls/platform.pem + platform-key.pem; also RevokeCertificate/2)
    FK's fetch      https://127.0.0.1:${PORTAL_RIV_PORT:-8444}/riv/clinicalprocess/healthcond/certificate/ListCertificatesForCitizen/3/rivtabp21?wsdl
                    (mutual TLS with .cache/tls/fk.pem; also GetCertificate/2)
    intake API      http://127.0.0.1:${INTAKE_PORT:-8001}/docs   (bearer token: dev-platform-secret)
    intake OpenAPI  http://127.0.0.1:${INTAKE_PORT:-8001}/openapi.json
    consent API     http://127.0.0.1:${CONSENT_PORT:-8002}/docs   (internal; bearer token: dev-portal-to-consent)
    BankID (test)   http://127.0.0.1:${IDPSIM_PORT:-8010}/.well-known/openid-configuration   (OIDC; test persons: /sim/persons)
    dispatch        http://127.0.0.1:${DISPATCH_PORT:-8003}/docs   (re-drive a citizen's send: minaintyg-admin dispatch retry ID --operator YOU)
    statistics      http://127.0.0.1:${STATS_PORT:-8004}/   (dashboard; reports at /v1/reports, feed on stats.sickleave.v1)
    FK simulator    http://127.0.0.1:${FKSIM_PORT:-8011}/docs   (bearer token: dev-minaintyg-to-fk; faults at /sim/faults)
                    receives RegisterCertificate v3 at https://127.0.0.1:${FKSIM_RIV_PORT:-8445}/riv/... (dispatch: ${DISPATCH_FK_ADAPTER})
    metrics         /metrics on every service above (Prometheus); consumer lag: minaintyg-admin lag
    Kafka           ${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}   (${KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}; as the administrator: eval "\$(minaintyg-infra env admin)")
MSG
if [ -n "${CLUSTER:-}" ]; then cat <<MSG
    second replicas portal :8100, intake :8101 (RIV-TA :8543), consent :8102, dispatch :8103, stats reports :8104
MSG
fi
cat <<MSG

  Test persons to log in as (BankID (test) page; or type any valid personnummer):
MSG
idp-sim persons | sed 's/^/    /'
echo
# Development: the simulated citizens consent (all but those offered on the BankID (test) page), so statistics has
# data within seconds.
(minaintyg-admin stats consent-simulated --consent-url "http://127.0.0.1:${CONSENT_PORT:-8002}" >/dev/null 2>&1 &)
unset KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD  # the administrator's login is not handed to the processes
exec honcho --no-prefix -f "$procfile" start
