-- The recipient registry: recipients are data. Adding one is a row (and, for a new kind of recipient, an adapter
-- registered under its `adapter_kind`); the dispatch logic never names a recipient.
CREATE TABLE recipients (
    id                  text PRIMARY KEY CHECK (id ~ '^[A-Z0-9_]{2,32}$'),
    name                text     NOT NULL,
    active              boolean  NOT NULL DEFAULT true,
    certificate_types   text[]   NOT NULL,
    endpoint            text     NOT NULL,
    adapter_kind        text     NOT NULL,
    trusted_for_protected_identities boolean NOT NULL DEFAULT false,
    max_concurrency     integer  NOT NULL DEFAULT 32 CHECK (max_concurrency > 0)
);
-- Försäkringskassan (DOMAIN.md); its endpoint is set from DISPATCH_FK_ENDPOINT at start-up.
INSERT INTO recipients (id, name, active, certificate_types, endpoint, adapter_kind, trusted_for_protected_identities)
VALUES ('FKASSA', 'Försäkringskassan', true, ARRAY['LISJP', 'FK7263', 'LUSE', 'LUAE_NA', 'LUAE_FS'],
        'http://127.0.0.1:8011', 'fk-http', true);

-- Copies of released certificates dispatch may send. `document` (the certificate JSON) is dropped when the
-- certificate is revoked or the citizen withdraws consent; the row then only says why it cannot be sent.
CREATE TABLE certificates (
    id             text PRIMARY KEY,
    citizen_ref    text        NOT NULL,
    type           text        NOT NULL,
    test_patient   boolean     NOT NULL,
    document       text,
    status         text        NOT NULL CHECK (status IN ('released', 'revoked', 'withdrawn')),
    changed_at     timestamptz NOT NULL
);
CREATE INDEX certificates_citizen ON certificates (citizen_ref);

-- The send ledger: one row per certificate × recipient × kind (a send, or the forwarding of a revocation),
-- written before any call. `call_key` is the idempotency key of every call for the row, across retries, crashes
-- and replicas. Only audit fields: no personal data (the certificate itself is in `certificates`).
CREATE TABLE sends (
    id               bigserial PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('send', 'revoke')),
    certificate_id   text        NOT NULL,
    recipient_id     text        NOT NULL,
    citizen_ref      text        NOT NULL,
    certificate_type text        NOT NULL,
    call_key         uuid        NOT NULL UNIQUE,
    request_key      uuid        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    claimed_by       integer,
    deadline_at      timestamptz NOT NULL,
    requested_at     timestamptz NOT NULL,
    finished_at      timestamptz,
    failure_code     text,
    last_error       text,
    recipient_reference text,
    UNIQUE (certificate_id, recipient_id, kind)
);
CREATE INDEX sends_due ON sends (recipient_id, next_attempt_at) WHERE state IN ('pending', 'in_flight');
CREATE INDEX sends_citizen ON sends (citizen_ref);

-- Requests for a certificate dispatch has not seen released yet: the request and the release travel on different
-- topics, so the request may come first. Answered when the release comes, or refused as unknown after a grace time.
CREATE TABLE waiting_requests (
    request_key     uuid PRIMARY KEY,
    certificate_id  text        NOT NULL,
    recipient_id    text        NOT NULL,
    citizen_ref     text        NOT NULL,
    requested_at    timestamptz NOT NULL,
    correlation_id  text        NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX waiting_requests_certificate ON waiting_requests (certificate_id);
CREATE INDEX waiting_requests_expiry ON waiting_requests (expires_at);
