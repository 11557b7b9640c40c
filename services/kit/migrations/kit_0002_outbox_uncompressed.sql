-- Outbox rows live for milliseconds: compressing their values (TOAST's default, pglz) costs more CPU than it saves.
ALTER TABLE outbox ALTER COLUMN value SET STORAGE EXTERNAL;
