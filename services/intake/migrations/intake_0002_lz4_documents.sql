-- The received documents are a few kB of JSON each: lz4 compresses them at a fraction of pglz's CPU cost.
ALTER TABLE certificates ALTER COLUMN original SET COMPRESSION lz4;
ALTER TABLE certificates ALTER COLUMN normalised SET COMPRESSION lz4;
