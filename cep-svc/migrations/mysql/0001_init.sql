-- cep-svc schema, MySQL/MariaDB dialect (keep in step with ../sqlite/0001_init.sql).
-- Aggregates are stored whole as protobuf in `doc`, with the columns queries filter on.
CREATE TABLE operators (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  kind BIGINT NOT NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE designations (
  operator_id VARCHAR(64) NOT NULL,
  region VARCHAR(8) NOT NULL,
  start_date BIGINT NOT NULL,
  end_date BIGINT NOT NULL,
  PRIMARY KEY (operator_id, region, start_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX designations_by_region ON designations (region, start_date);
CREATE TABLE levels (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  catalogue VARCHAR(16) NOT NULL,
  catalogue_label VARCHAR(255) NOT NULL,
  level_rank BIGINT NOT NULL,
  label VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO levels (id, catalogue, catalogue_label, level_rank, label) VALUES
  ('2014/1', '2014', 'Cahier des charges 2014 (trois niveaux)', 1, 'Accueil individualisé'),
  ('2014/2', '2014', 'Cahier des charges 2014 (trois niveaux)', 2, 'Conseil personnalisé'),
  ('2014/3', '2014', 'Cahier des charges 2014 (trois niveaux)', 3, 'Accompagnement à la mise en œuvre du projet professionnel'),
  ('2019/1', '2019', 'Cahier des charges 2019 (deux niveaux)', 1, 'Accueil individualisé'),
  ('2019/2', '2019', 'Cahier des charges 2019 (deux niveaux)', 2, 'Conseil personnalisé et accompagnement à la mise en œuvre');
CREATE TABLE beneficiaries (
  pseudonym VARCHAR(64) NOT NULL PRIMARY KEY,
  birth_year BIGINT NOT NULL,
  sex BIGINT NOT NULL,
  department VARCHAR(8) NOT NULL,
  region VARCHAR(8) NOT NULL,
  status BIGINT NOT NULL,
  qualification_level BIGINT NOT NULL,
  anonymised BIGINT NOT NULL DEFAULT 0,
  create_time BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE contacts (
  pseudonym VARCHAR(64) NOT NULL,
  operator_id VARCHAR(64) NOT NULL,
  doc LONGBLOB NOT NULL,
  PRIMARY KEY (pseudonym, operator_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE cases (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  operator_id VARCHAR(64) NOT NULL,
  pseudonym VARCHAR(64) NOT NULL,
  state BIGINT NOT NULL,
  level VARCHAR(16) NOT NULL,
  opening_date BIGINT NOT NULL,
  closing_date BIGINT NOT NULL DEFAULT 0,
  external_id VARCHAR(128) NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  last_activity BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX cases_by_operator ON cases (operator_id, id);
CREATE INDEX cases_by_pseudonym ON cases (pseudonym);
CREATE UNIQUE INDEX cases_by_external_id ON cases (operator_id, external_id);
CREATE TABLE transfers (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  case_id VARCHAR(64) NOT NULL,
  from_operator VARCHAR(64) NOT NULL,
  to_operator VARCHAR(64) NOT NULL,
  state BIGINT NOT NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX transfers_by_from ON transfers (from_operator, id);
CREATE INDEX transfers_by_to ON transfers (to_operator, id);
CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  time BIGINT NOT NULL,
  actor VARCHAR(160) NOT NULL,
  action VARCHAR(64) NOT NULL,
  resource VARCHAR(255) NOT NULL,
  detail VARCHAR(1000) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX audit_log_by_resource ON audit_log (resource, id);
CREATE TABLE activity (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  time BIGINT NOT NULL,
  operator_id VARCHAR(64) NOT NULL,
  doc LONGBLOB NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX activity_by_operator ON activity (operator_id, seq);
-- One row that every append locks until its commit (UPDATE ... SET appended = appended + 1):
-- appends are serialised, so seq order is commit order. Without it, on MySQL (AUTO_INCREMENT
-- values are taken at insert time, not at commit) a reader could pass an event that commits later
-- with a smaller seq, and a feed resuming after a cursor would miss it for good.
CREATE TABLE activity_lock (
  id BIGINT NOT NULL PRIMARY KEY,
  appended BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO activity_lock (id, appended) VALUES (1, 0);
CREATE TABLE idempotency_keys (
  method VARCHAR(128) NOT NULL,
  request_id VARCHAR(64) NOT NULL,
  resource_name VARCHAR(512) NOT NULL,
  request_hash VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (method, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
