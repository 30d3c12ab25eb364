-- Each operator's own record of a person's situation (keep in step with ../mysql/0006_operator_situation.sql).
--
-- The shared `beneficiaries` row (one per pseudonym) holds what every operator agrees on (birth
-- year, sex) and the situation of the first registration. The department, region, status and
-- qualification an operator registers go on its own contact row: another operator's
-- registration neither shows it what this one entered nor changes what this one's cases count.
-- Existing rows start from the shared record, which is what they saw and counted until now. The
-- columns stay nullable: a row written by the previous binary during a rolling update has none,
-- and reads fall back to the shared record for it (an empty situation would count nowhere).
ALTER TABLE contacts ADD COLUMN department TEXT;
ALTER TABLE contacts ADD COLUMN region TEXT;
ALTER TABLE contacts ADD COLUMN status INTEGER;
ALTER TABLE contacts ADD COLUMN qualification_level INTEGER;
UPDATE contacts SET department = b.department, region = b.region, status = b.status,
    qualification_level = b.qualification_level
  FROM beneficiaries b WHERE b.pseudonym = contacts.pseudonym;
