-- Score sheets of an earlier jury (keep in step with ../sqlite/0003_past_score_sheets.sql).
--
-- A candidacy goes before another jury when its candidate was absent or excused, or when its
-- result was revoked for a new jury: the sheets given to the earlier one must not mix with the new
-- jury's (spreads, completeness), and an acknowledged sheet is never lost. ScheduleCandidacy moves
-- them here, under the session (id) they were given in.
CREATE TABLE past_score_sheets (
  candidacy_id VARCHAR(64) NOT NULL,
  session_id VARCHAR(64) NOT NULL,
  member_id VARCHAR(128) NOT NULL,
  doc LONGBLOB NOT NULL,
  update_time BIGINT NOT NULL,
  set_aside_time BIGINT NOT NULL,
  PRIMARY KEY (candidacy_id, session_id, member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
