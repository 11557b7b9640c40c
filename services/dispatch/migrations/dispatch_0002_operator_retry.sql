-- Who re-drove a send (minaintyg-admin dispatch retry --operator ...), and when: an operator acts on the record of a
-- send the citizen asked for, never sends for the citizen.
ALTER TABLE sends ADD COLUMN retried_by text;
ALTER TABLE sends ADD COLUMN retried_at timestamptz;
