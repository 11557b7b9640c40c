-- Certificate documents are a few kB of JSON: lz4 compresses them at a fraction of pglz's CPU cost.
ALTER TABLE certificates ALTER COLUMN document SET COMPRESSION lz4;
