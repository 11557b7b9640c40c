-- Disclosure control (issue #15): the cell key method, publications on a fixed cadence, no citizen-ref mapping,
-- analysts' audit log. Aggregates made before this migration have no key sums: run `minaintyg-admin stats rebuild`.

-- The pseudonym is now a keyed hash of the citizen ref: withdrawal computes it, and no table links the two.
DROP TABLE citizens;

-- Sum of the record keys of the records counted in each aggregate row (cell key = sum of a cell's rows mod 2^32).
ALTER TABLE aggregates ADD COLUMN k bigint NOT NULL DEFAULT 0;

-- Every published table (report × period × filter): a closed period's table is stored once and never changes;
-- a preliminary one is replaced only by a release (fixed cadence, enough changes since the last).
CREATE TABLE publications (
    key         text PRIMARY KEY,
    body        text        NOT NULL,  -- the report as JSON, served as stored
    preliminary boolean     NOT NULL,
    released_at timestamptz NOT NULL
);

-- Cases changed since the last preliminary release (one row).
CREATE TABLE release_state (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    changes     bigint      NOT NULL DEFAULT 0,
    released_at timestamptz
);
INSERT INTO release_state DEFAULT VALUES;

-- Who asked the report API what (no personal data: the analyst is the credential's name).
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    analyst text        NOT NULL,
    path    text        NOT NULL,
    report  text,
    period  text,
    county  text,
    status  integer     NOT NULL
);
