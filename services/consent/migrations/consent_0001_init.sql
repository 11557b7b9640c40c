-- One row per citizen, locked by every change that concerns that citizen: consent changes and certificate
-- arrivals for the same citizen are serialised here, whatever partition or process they come from.
CREATE TABLE citizens (
    citizen_ref   text PRIMARY KEY,
    consent       text NOT NULL DEFAULT 'none' CHECK (consent IN ('none', 'given', 'withdrawn')),
    text_version  text,
    changed_at    timestamptz
);

-- Every consent change, with the text version the citizen was shown.
CREATE TABLE consent_history (
    id            bigserial PRIMARY KEY,
    citizen_ref   text        NOT NULL REFERENCES citizens (citizen_ref),
    action        text        NOT NULL CHECK (action IN ('given', 'withdrawn')),
    text_version  text        NOT NULL,
    channel       text        NOT NULL,
    at            timestamptz NOT NULL
);
CREATE INDEX consent_history_citizen ON consent_history (citizen_ref, id);

-- Certificates behind the gate: held while there is no consent, released while there is.
-- `seq` is the order of arrival (issue order); `document` is the certificate JSON, dropped on revocation.
CREATE TABLE certificates (
    id             text PRIMARY KEY,
    seq            bigserial   NOT NULL,
    citizen_ref    text        NOT NULL REFERENCES citizens (citizen_ref),
    type           text        NOT NULL,
    test_patient   boolean     NOT NULL,
    document       text,
    status         text        NOT NULL CHECK (status IN ('held', 'released', 'revoked')),
    ever_released  boolean     NOT NULL DEFAULT false,
    received_at    timestamptz NOT NULL,
    held_since     timestamptz
);
CREATE INDEX certificates_citizen ON certificates (citizen_ref, seq);
CREATE INDEX certificates_held ON certificates (held_since) WHERE status = 'held';
