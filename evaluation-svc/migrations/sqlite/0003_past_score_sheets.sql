-- Score sheets of an earlier jury (keep in step with ../mysql/0003_past_score_sheets.sql).
--
-- A candidacy goes before another jury when its candidate was absent or excused, or when its
-- result was revoked for a new jury: the sheets given to the earlier one must not mix with the new
-- jury's (spreads, completeness), and an acknowledged sheet is never lost. ScheduleCandidacy moves
-- them here, under the session (id) they were given in.
CREATE TABLE past_score_sheets (
  candidacy_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  doc BLOB NOT NULL,
  update_time INTEGER NOT NULL,
  set_aside_time INTEGER NOT NULL,
  PRIMARY KEY (candidacy_id, session_id, member_id)
);
