-- Retention notices, data-sharing compliance, erasure (keep in step with ../mysql/0002_retention_feed.sql).
--
-- cases.notice_date: the day (yyyymmdd) the retention pass gave the case its 30-day notice; 0 =
-- none. PutCase clears it whenever the case's last_activity moves (new activity cancels a notice).
ALTER TABLE cases ADD COLUMN notice_date INTEGER NOT NULL DEFAULT 0;
-- The retention pass scans inactive cases of one state in (last_activity, id) order.
CREATE INDEX cases_by_inactivity ON cases (state, last_activity, id);
-- activity.own_activity: 1 for the operator's own activity (what the data-sharing duty counts),
-- 0 for events the platform emits on its cases (retention notice, anonymisation, erasure).
-- Every event before this migration is the operator's own activity.
ALTER TABLE activity ADD COLUMN own_activity INTEGER NOT NULL DEFAULT 1;
-- Compliance: the last own activity of an operator before a date is one index lookup.
CREATE INDEX activity_by_operator_time ON activity (operator_id, own_activity, time);
-- Erasure clears the free-text reasons of a case's transfers.
CREATE INDEX transfers_by_case ON transfers (case_id);
