-- cep-svc schema, SQLite dialect (keep in step with ../mysql/0001_init.sql).
-- Aggregates are stored whole as protobuf in `doc`, with the columns queries filter on.
CREATE TABLE operators (
  id TEXT NOT NULL PRIMARY KEY,
  kind INTEGER NOT NULL,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE designations (
  operator_id TEXT NOT NULL REFERENCES operators (id),
  region TEXT NOT NULL,
  start_date INTEGER NOT NULL,
  end_date INTEGER NOT NULL,
  PRIMARY KEY (operator_id, region, start_date)
);
CREATE INDEX designations_by_region ON designations (region, start_date);
CREATE TABLE levels (
  id TEXT NOT NULL PRIMARY KEY,
  catalogue TEXT NOT NULL,
  catalogue_label TEXT NOT NULL,
  level_rank INTEGER NOT NULL,
  label TEXT NOT NULL
);
INSERT INTO levels (id, catalogue, catalogue_label, level_rank, label) VALUES
  ('2014/1', '2014', 'Cahier des charges 2014 (trois niveaux)', 1, 'Accueil individualisé'),
  ('2014/2', '2014', 'Cahier des charges 2014 (trois niveaux)', 2, 'Conseil personnalisé'),
  ('2014/3', '2014', 'Cahier des charges 2014 (trois niveaux)', 3, 'Accompagnement à la mise en œuvre du projet professionnel'),
  ('2019/1', '2019', 'Cahier des charges 2019 (deux niveaux)', 1, 'Accueil individualisé'),
  ('2019/2', '2019', 'Cahier des charges 2019 (deux niveaux)', 2, 'Conseil personnalisé et accompagnement à la mise en œuvre');
CREATE TABLE beneficiaries (
  pseudonym TEXT NOT NULL PRIMARY KEY,
  birth_year INTEGER NOT NULL,
  sex INTEGER NOT NULL,
  department TEXT NOT NULL,
  region TEXT NOT NULL,
  status INTEGER NOT NULL,
  qualification_level INTEGER NOT NULL,
  anonymised INTEGER NOT NULL DEFAULT 0,
  create_time INTEGER NOT NULL
);
CREATE TABLE contacts (
  pseudonym TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  doc BLOB NOT NULL,
  PRIMARY KEY (pseudonym, operator_id)
);
CREATE TABLE cases (
  id TEXT NOT NULL PRIMARY KEY,
  operator_id TEXT NOT NULL,
  pseudonym TEXT NOT NULL,
  state INTEGER NOT NULL,
  level TEXT NOT NULL,
  opening_date INTEGER NOT NULL,
  closing_date INTEGER NOT NULL DEFAULT 0,
  external_id TEXT,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  last_activity INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
);
CREATE INDEX cases_by_operator ON cases (operator_id, id);
CREATE INDEX cases_by_pseudonym ON cases (pseudonym);
CREATE UNIQUE INDEX cases_by_external_id ON cases (operator_id, external_id);
CREATE TABLE transfers (
  id TEXT NOT NULL PRIMARY KEY,
  case_id TEXT NOT NULL,
  from_operator TEXT NOT NULL,
  to_operator TEXT NOT NULL,
  state INTEGER NOT NULL,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL
);
CREATE INDEX transfers_by_from ON transfers (from_operator, id);
CREATE INDEX transfers_by_to ON transfers (to_operator, id);
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_resource ON audit_log (resource, id);
CREATE TABLE activity (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  operator_id TEXT NOT NULL,
  doc BLOB NOT NULL
);
CREATE INDEX activity_by_operator ON activity (operator_id, seq);
-- One row that every append locks until its commit (UPDATE ... SET appended = appended + 1):
-- appends are serialised, so seq order is commit order. Without it, on MySQL (AUTO_INCREMENT
-- values are taken at insert time, not at commit) a reader could pass an event that commits later
-- with a smaller seq, and a feed resuming after a cursor would miss it for good.
CREATE TABLE activity_lock (
  id INTEGER NOT NULL PRIMARY KEY,
  appended INTEGER NOT NULL
);
INSERT INTO activity_lock (id, appended) VALUES (1, 0);
CREATE TABLE idempotency_keys (
  method TEXT NOT NULL,
  request_id TEXT NOT NULL,
  resource_name TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (method, request_id)
);
