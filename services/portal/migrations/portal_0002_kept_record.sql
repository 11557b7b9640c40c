-- What the portal keeps of a citizen's record while consent is withdrawn (the minimum, no certificate content):
-- per certificate id when it was received and the citizen's own archive and restore actions (state and time), so
-- that after a new consent every certificate comes back with the archive flag and history it had. Sends are not kept here: dispatch owns
-- them and tells them again (dispatch.succeeded from its ledger) when the certificate is released again.
CREATE TABLE kept_history (
    id              bigserial   PRIMARY KEY,
    certificate_id  text        NOT NULL,
    citizen_ref     text        NOT NULL,
    party           text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('RECEIVED', 'ARCHIVED', 'RESTORED')),
    at              timestamptz NOT NULL
);
CREATE INDEX kept_history_certificate ON kept_history (certificate_id, id);
CREATE INDEX kept_history_citizen ON kept_history (citizen_ref);

-- A send outcome for a certificate the portal does not have (yet): after a new consent, dispatch may tell its
-- ledger's sends before the portal has read the release again (two topics). Applied when the release comes.
CREATE TABLE early_outcomes (
    idempotency_key  uuid        PRIMARY KEY,
    certificate_id   text        NOT NULL,
    citizen_ref      text        NOT NULL,
    recipient_id     text        NOT NULL,
    at               timestamptz NOT NULL
);
CREATE INDEX early_outcomes_certificate ON early_outcomes (certificate_id);

-- Who did it: NULL for the citizen, otherwise the operator's identity (an operator action on the citizen's record:
-- a send retried, a dead-letter replay, a statistics rebuild).
ALTER TABLE access_log ADD COLUMN actor text;
