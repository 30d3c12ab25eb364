-- Retention of registrations without a file (keep in step with ../mysql/0007_contact_retention.sql).
--
-- An operator's contact row outlives nothing when the operator holds no file of the person (a
-- registration never followed by a case): the case's retention never reaches it. The row now
-- keeps its own last activity (every write of it) and retention notice, and the retention pass
-- gives it the case's treatment: a notice after 2 years without activity, deletion 30 days later.
-- Existing rows start their clock at this migration (their writes were not dated). last_activity
-- stays nullable: a row the previous binary writes during a rolling update has none, and the
-- retention pass dates it when it first sees it.
ALTER TABLE contacts ADD COLUMN last_activity INTEGER;
ALTER TABLE contacts ADD COLUMN notice_date INTEGER NOT NULL DEFAULT 0;
UPDATE contacts SET last_activity = CAST(strftime('%s', 'now') AS INTEGER) * 1000000;
CREATE INDEX contacts_by_last_activity ON contacts (last_activity, pseudonym, operator_id);
