-- The ledger entries an issued certificate counted (keep in step with ../mysql/0002_ledger_uses.sql).
--
-- A certificate issued with blocs held from an earlier result relies on that result: revoking it
-- would leave the certificate standing on blocs the candidate no longer holds. IssueCertificate
-- records, per bloc it counted from the ledger, every result whose entry held it; a revocation is
-- refused while a certificate has a bloc that no other recorded result holds. Certificates
-- issued before this migration recorded nothing.
CREATE TABLE ledger_uses (
  candidacy_id TEXT NOT NULL,
  bloc_code TEXT NOT NULL,
  source_deliberation TEXT NOT NULL,
  PRIMARY KEY (candidacy_id, bloc_code, source_deliberation)
);
CREATE INDEX ledger_uses_by_source ON ledger_uses (source_deliberation);
