-- External ids of anonymised or erased files (keep in step with ../sqlite/0004_erased_external_ids.sql).
--
-- Anonymisation clears a case's external id (the operator's file number for the person); its keyed
-- hash stays here, so that importing the same history again finds the file (unchanged) instead of
-- re-creating what was erased.
CREATE TABLE erased_external_ids (
  operator_id VARCHAR(64) NOT NULL,
  external_id_hash VARCHAR(64) NOT NULL,
  PRIMARY KEY (operator_id, external_id_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
