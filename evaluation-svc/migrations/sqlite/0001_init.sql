-- evaluation-svc schema, SQLite dialect (keep in step with ../mysql/0001_init.sql).
-- Aggregates are stored whole as protobuf in `doc`, with the columns lists filter on.
CREATE TABLE candidacies (
  id TEXT NOT NULL PRIMARY KEY,
  certifier TEXT NOT NULL,
  certification_code TEXT NOT NULL,
  candidate_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  session_id TEXT NOT NULL DEFAULT '',
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
);
CREATE INDEX candidacies_by_certifier ON candidacies (certifier, id);
CREATE INDEX candidacies_by_candidate ON candidacies (candidate_id);
CREATE TABLE jury_sessions (
  id TEXT NOT NULL PRIMARY KEY,
  certifier TEXT NOT NULL,
  session_date INTEGER NOT NULL,
  state INTEGER NOT NULL,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
);
CREATE INDEX jury_sessions_by_certifier ON jury_sessions (certifier, id);
CREATE TABLE score_sheets (
  candidacy_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  doc BLOB NOT NULL,
  update_time INTEGER NOT NULL,
  PRIMARY KEY (candidacy_id, member_id)
);
CREATE TABLE deliberations (
  candidacy_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  state INTEGER NOT NULL,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  PRIMARY KEY (candidacy_id, round)
);
CREATE TABLE acquired_blocs (
  candidate_id TEXT NOT NULL,
  certification_code TEXT NOT NULL,
  bloc_code TEXT NOT NULL,
  acquired_date INTEGER NOT NULL,
  expiry_date INTEGER NOT NULL,
  source_deliberation TEXT NOT NULL,
  PRIMARY KEY (candidate_id, certification_code, bloc_code, source_deliberation)
);
CREATE INDEX acquired_blocs_by_source ON acquired_blocs (source_deliberation);
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_resource ON audit_log (resource, id);
CREATE TABLE idempotency_keys (
  method TEXT NOT NULL,
  request_id TEXT NOT NULL,
  resource_name TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (method, request_id)
);
