-- Each operator's own record of a person's situation (keep in step with ../sqlite/0006_operator_situation.sql).
--
-- The shared `beneficiaries` row (one per pseudonym) holds what every operator agrees on (birth
-- year, sex) and the situation of the first registration. The department, region, status and
-- qualification an operator registers go on its own contact row: another operator's
-- registration neither shows it what this one entered nor changes what this one's cases count.
-- Existing rows start from the shared record, which is what they saw and counted until now. The
-- columns stay nullable: a row written by the previous binary during a rolling update has none,
-- and reads fall back to the shared record for it (an empty situation would count nowhere).
ALTER TABLE contacts
  ADD COLUMN department VARCHAR(8) NULL,
  ADD COLUMN region VARCHAR(8) NULL,
  ADD COLUMN status BIGINT NULL,
  ADD COLUMN qualification_level BIGINT NULL;
UPDATE contacts c JOIN beneficiaries b ON b.pseudonym = c.pseudonym
  SET c.department = b.department, c.region = b.region, c.status = b.status,
      c.qualification_level = b.qualification_level;
