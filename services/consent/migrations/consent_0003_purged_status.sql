-- A purged certificate keeps no data of the citizen, only that it once was released: a late revocation of it is
-- still forwarded to the services (and recipients) that may have it.
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('held', 'released', 'revoked', 'purged'));
