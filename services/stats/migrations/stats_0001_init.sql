-- Statistics keeps pseudonymised facts only: no personnummer, name, address or free text (issue #6).

-- citizen ref (the system's keyed hash, itself no personnummer) → statistics pseudonym, so that
-- citizen.data_withdrawn, which names only the citizen ref, can remove that person's facts.
CREATE TABLE citizens (
    citizen_ref text PRIMARY KEY,
    pseudonym   text NOT NULL
);
CREATE INDEX citizens_pseudonym ON citizens (pseudonym);

-- One row per released certificate of a real (not test) patient.
CREATE TABLE facts (
    certificate_id text PRIMARY KEY,
    pseudonym      text     NOT NULL,
    cert_type      text     NOT NULL,
    provider       text     NOT NULL,
    county         text     NOT NULL,
    sex            char(1)  NOT NULL CHECK (sex IN ('F', 'M')),
    age            smallint NOT NULL,
    code           text,
    chapter        text,
    grp            text,
    signed_on      date     NOT NULL,
    signed_at_us   bigint   NOT NULL,
    periods        jsonb    NOT NULL  -- [[start, end, degree], ...]
);
CREATE INDEX facts_person ON facts (pseudonym, provider);

-- Revoked certificate ids (tombstones): a revoke may arrive before the certificate.
CREATE TABLE revoked (
    certificate_id text PRIMARY KEY
);

-- Sick-leave cases (sjukfall), recomputed per person and care provider when a certificate arrives or leaves.
CREATE TABLE cases (
    pseudonym    text     NOT NULL,
    provider     text     NOT NULL,
    county       text     NOT NULL,
    sex          char(1)  NOT NULL,
    first_day    date     NOT NULL,
    last_day     date     NOT NULL,
    days         integer  NOT NULL,
    age          smallint NOT NULL,
    code         text,
    chapter      text,
    grp          text,
    degree       smallint NOT NULL,
    certificates integer  NOT NULL
);
CREATE INDEX cases_person ON cases (pseudonym, provider);

-- Counts per report dimension, maintained with every change of cases or facts; reports sum these.
-- first_month/last_month: months since year 0 of the case's first and last day (a certificate's signing month).
CREATE TABLE aggregates (
    dimension   text     NOT NULL,
    value       text     NOT NULL,
    first_month integer  NOT NULL,
    last_month  integer  NOT NULL,
    county      text     NOT NULL,
    provider    text     NOT NULL,
    sex         char(1)  NOT NULL,
    n           integer  NOT NULL,
    PRIMARY KEY (dimension, first_month, last_month, value, county, provider, sex)
);

-- The last snapshot published per report key (report + period), so an unchanged report is not republished.
CREATE TABLE feed_state (
    report_key   text PRIMARY KEY,
    digest       text        NOT NULL,
    published_at timestamptz NOT NULL
);

-- An operator rebuild in progress: the next offset per partition, saved with each applied batch.
CREATE TABLE rebuild_progress (
    topic          text    NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint  NOT NULL,
    end_offset     bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
