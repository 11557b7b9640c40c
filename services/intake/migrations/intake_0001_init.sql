-- Care units whose certificates intake accepts. Connecting a unit is an operator action.
CREATE TABLE care_units (
    hsa_id      text PRIMARY KEY,
    name        text        NOT NULL,
    connected   boolean     NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- The seed: only Sankt Görans sjukhus in Stockholm at first; other hospitals connect over time.
INSERT INTO care_units (hsa_id, name, connected) VALUES ('SE2321000016-15CQ', 'Sankt Görans sjukhus', true);

-- Received certificates: the document exactly as received, and the fields intake needs to reason about it.
CREATE TABLE certificates (
    id                text PRIMARY KEY,
    type              text        NOT NULL,
    personnummer      text        NOT NULL,
    citizen_ref       text        NOT NULL,
    care_unit_hsa_id  text        NOT NULL,
    signed_at         timestamptz NOT NULL,
    test_patient      boolean     NOT NULL,
    platform          text        NOT NULL,
    received_at       timestamptz NOT NULL,
    original          text        NOT NULL,
    normalised        jsonb       NOT NULL
);
CREATE INDEX certificates_citizen_ref ON certificates (citizen_ref);

CREATE TABLE revocations (
    certificate_id  text PRIMARY KEY REFERENCES certificates (id),
    revoked_at      timestamptz NOT NULL,
    reason          text,
    platform        text        NOT NULL,
    received_at     timestamptz NOT NULL
);
