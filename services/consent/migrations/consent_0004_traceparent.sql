-- The trace of the platform's request a certificate came with: a certificate held until consent is released later
-- in the same trace, so it can be followed from intake to the portal and dispatch whenever it is released.
ALTER TABLE certificates ADD COLUMN traceparent text;
