-- The citizen's read model: released certificates, their status history, dispatch state and archive flag.
-- Every list query is "one citizen's certificates, newest first": (citizen_ref, signed_at DESC) serves it from one
-- index range, so the list stays as fast with a million certificates as with a hundred.
CREATE TABLE certificates (
    id              text PRIMARY KEY,
    citizen_ref     text        NOT NULL,
    type            text        NOT NULL,
    signed_at       timestamptz NOT NULL,
    care_unit_hsa   text        NOT NULL,
    care_unit_name  text        NOT NULL,
    issuer_name     text        NOT NULL,
    document        jsonb       NOT NULL,
    relation_kind   text,
    relation_to     text,
    replaced_by     text,
    archived        boolean     NOT NULL DEFAULT false,
    test_patient    boolean     NOT NULL,
    released_at     timestamptz NOT NULL
);
ALTER TABLE certificates ALTER COLUMN document SET COMPRESSION lz4;
CREATE INDEX certificates_citizen_signed ON certificates (citizen_ref, signed_at DESC, id);
-- A replacement may arrive before the certificate it replaces: found through this index when the older arrives.
CREATE INDEX certificates_relation_to ON certificates (relation_to) WHERE relation_to IS NOT NULL;

-- Append-only status history as the citizen sees it: (party, state, time).
CREATE TABLE status_history (
    id              bigserial   PRIMARY KEY,
    certificate_id  text        NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    party           text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('RECEIVED', 'SENT', 'ARCHIVED', 'RESTORED', 'REPLACED')),
    detail          text,
    at              timestamptz NOT NULL
);
CREATE INDEX status_history_certificate ON status_history (certificate_id, at, id);

-- Revocations seen, also before the certificate itself: a revoked id is never inserted afterwards.
-- Holds only the pseudonymous citizen ref and the certificate id, so it outlives a withdrawal of consent.
CREATE TABLE revocations (
    certificate_id  text        PRIMARY KEY,
    citizen_ref     text        NOT NULL,
    revoked_at      timestamptz NOT NULL
);

-- One row per send request (the idempotency key is minted when the confirmation page is rendered).
CREATE TABLE dispatches (
    idempotency_key uuid        PRIMARY KEY,
    certificate_id  text        NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    citizen_ref     text        NOT NULL,
    recipient_id    text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('REQUESTED', 'SUCCEEDED', 'FAILED')),
    requested_at    timestamptz NOT NULL,
    outcome_at      timestamptz,
    reason_code     text,
    reason          text
);
CREATE INDEX dispatches_certificate ON dispatches (certificate_id, requested_at);
-- At most one request in flight or delivered per certificate and recipient: a second click cannot send twice.
CREATE UNIQUE INDEX dispatches_one_active ON dispatches (certificate_id, recipient_id)
    WHERE state IN ('REQUESTED', 'SUCCEEDED');

-- Every list, read, print, save, employer copy, send, archive and restore, and every refused attempt.
-- Kept when consent is withdrawn: it is the audit trail of access (no certificate content, only ids).
CREATE TABLE access_log (
    id              bigserial   PRIMARY KEY,
    citizen_ref     text        NOT NULL,
    certificate_id  text,
    action          text        NOT NULL,
    outcome         text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX access_log_citizen ON access_log (citizen_ref, id DESC);

-- Rectification and blocking (spärr) requests: recorded, acknowledged, handled by the service desk.
CREATE TABLE citizen_requests (
    id              bigserial   PRIMARY KEY,
    citizen_ref     text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('RECTIFICATION', 'BLOCKING')),
    certificate_id  text,
    message         text        NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX citizen_requests_citizen ON citizen_requests (citizen_ref, id);

-- Server-side sessions. The cookie carries a random token; only its SHA-256 is stored, so a copy of this table
-- logs nobody in. A pre-login row holds the OIDC state, nonce and PKCE verifier; login replaces it with a new row.
CREATE TABLE sessions (
    id_hash         bytea       PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('PRE_LOGIN', 'AUTHENTICATED')),
    created_at      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    csrf_token      text        NOT NULL,
    oidc_state      text,
    oidc_nonce      text,
    code_verifier   text,
    citizen_ref     text,
    personnummer    text,
    given_name      text,
    family_name     text,
    id_token        text,
    consent_given   boolean     NOT NULL DEFAULT false
);
CREATE INDEX sessions_last_seen ON sessions (last_seen);
