-- The citizen's consent generation: one more at every consent given or withdrawn (1, 2, 3, ...). Events about the
-- citizen's data carry it, so portal, dispatch and statistics recognise a release made before the citizen's last
-- withdrawal (a late, replayed or redelivered one) and drop it. Existing citizens start at their number of changes.
ALTER TABLE citizens ADD COLUMN generation integer NOT NULL DEFAULT 0;
UPDATE citizens SET generation = (SELECT count(*) FROM consent_history h WHERE h.citizen_ref = citizens.citizen_ref);
-- When held certificates of the citizen were last removed after the retention (held_retention_days): only the
-- time, nothing of the certificates, so the portal can tell the citizen that older certificates may exist at the
-- care unit.
ALTER TABLE citizens ADD COLUMN held_purged_at timestamptz;
