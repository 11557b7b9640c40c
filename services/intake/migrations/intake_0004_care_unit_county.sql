-- Issue #13: a certificate registered over RIV-TA names its care unit by HSA-id only; the unit's county (län, for
-- statistics) is part of its connection, as HSA records it. NULL: connected without a county (JSON deliveries name
-- the county themselves; RIV-TA deliveries from such a unit are refused until an operator sets it).
ALTER TABLE care_units ADD COLUMN county text CHECK (county ~ '^[0-9]{2}$');
UPDATE care_units SET county = '01' WHERE hsa_id = 'SE2321000016-15CQ';
