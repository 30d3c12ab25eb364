-- The ledger entries an issued certificate counted (keep in step with ../sqlite/0002_ledger_uses.sql).
--
-- A certificate issued with blocs held from an earlier result relies on that result: revoking it
-- would leave the certificate standing on blocs the candidate no longer holds. IssueCertificate
-- records, per bloc it counted from the ledger, every result whose entry held it; a revocation is
-- refused while a certificate has a bloc that no other recorded result holds. Certificates
-- issued before this migration recorded nothing.
CREATE TABLE ledger_uses (
  candidacy_id VARCHAR(64) NOT NULL,
  bloc_code VARCHAR(64) NOT NULL,
  source_deliberation VARCHAR(255) NOT NULL,
  PRIMARY KEY (candidacy_id, bloc_code, source_deliberation),
  KEY ledger_uses_by_source (source_deliberation)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
