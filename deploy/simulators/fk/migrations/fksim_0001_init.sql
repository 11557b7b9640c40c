-- What the simulated Försäkringskassan received: one row per idempotency key, the request body as sent.
-- `seq` orders the list of everything received; it is never restarted, so a reader's cursor stays valid
-- across a reset.
CREATE TABLE receipts (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receipt_id        uuid        NOT NULL UNIQUE,
    idempotency_key   uuid        NOT NULL UNIQUE,
    certificate_id    text        NOT NULL,
    certificate_type  text        NOT NULL,
    sender            text        NOT NULL,
    caller            text        NOT NULL,
    received_at       timestamptz NOT NULL,
    -- How often the same key came again (answered with this receipt, not stored again).
    replays           integer     NOT NULL DEFAULT 0,
    body              jsonb       NOT NULL
);
CREATE INDEX receipts_certificate_id ON receipts (certificate_id);

-- A certificate is revoked once; the key of the first revocation is kept so a replay gets the same answer.
CREATE TABLE revocations (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    revocation_id     uuid        NOT NULL UNIQUE,
    idempotency_key   uuid        NOT NULL UNIQUE,
    certificate_id    text        NOT NULL UNIQUE,
    sender            text        NOT NULL,
    caller            text        NOT NULL,
    reason            text,
    received_at       timestamptz NOT NULL,
    replays           integer     NOT NULL DEFAULT 0
);

-- Injected faults per kind, kept with the data so the statistics of a demo survive a restart of the simulator.
CREATE TABLE faults_injected (
    kind   text   PRIMARY KEY,
    count  bigint NOT NULL
);
