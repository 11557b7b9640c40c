-- Retention (issue #16): intake keeps a received certificate's documents (the original and its normalised form)
-- for INTAKE_DOCUMENT_RETENTION_DAYS (365, the same as consent keeps certificates held for want of consent), then
-- only the receipt: id, type, patient, care unit and times, which idempotency ("already received", 409 for another
-- patient) and revocations need. The certificate itself stays with the care unit that issued it.
ALTER TABLE certificates ALTER COLUMN original DROP NOT NULL;
ALTER TABLE certificates ALTER COLUMN normalised DROP NOT NULL;
CREATE INDEX certificates_documents_kept ON certificates (received_at) WHERE original IS NOT NULL;
