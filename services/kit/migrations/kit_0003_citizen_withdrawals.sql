-- The last withdrawal of consent seen per citizen (pseudonymous ref, consent generation, time; nothing else), kept
-- for good by every service that consumes consent.released.v1: a release made in an earlier generation (late,
-- replayed from a dead-letter topic, redelivered, or read again by a rebuild) is recognised by it and dropped.
CREATE TABLE citizen_withdrawals (
    citizen_ref  text        PRIMARY KEY,
    generation   integer     NOT NULL,
    at           timestamptz NOT NULL
);
