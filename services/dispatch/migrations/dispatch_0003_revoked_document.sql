-- A revocation forwarded to a recipient carries the revoked certificate's copy until it is delivered or fails: a
-- RIV-TA RevokeCertificate names the certificate's patient and issuer, and the certificate's own copy goes when it
-- is revoked. Cleared when the row finishes.
ALTER TABLE sends ADD COLUMN revoked_document text;
