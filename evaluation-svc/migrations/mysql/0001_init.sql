-- evaluation-svc schema, MySQL/MariaDB dialect (keep in step with ../sqlite/0001_init.sql).
-- Aggregates are stored whole as protobuf in `doc`, with the columns lists filter on.
CREATE TABLE candidacies (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  certifier VARCHAR(128) NOT NULL,
  certification_code VARCHAR(64) NOT NULL,
  candidate_id VARCHAR(128) NOT NULL,
  state INT NOT NULL,
  session_id VARCHAR(64) NOT NULL DEFAULT '',
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  KEY candidacies_by_certifier (certifier, id),
  KEY candidacies_by_candidate (candidate_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE jury_sessions (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  certifier VARCHAR(128) NOT NULL,
  session_date INT NOT NULL,
  state INT NOT NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  KEY jury_sessions_by_certifier (certifier, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE score_sheets (
  candidacy_id VARCHAR(64) NOT NULL,
  member_id VARCHAR(128) NOT NULL,
  doc LONGBLOB NOT NULL,
  update_time BIGINT NOT NULL,
  PRIMARY KEY (candidacy_id, member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE deliberations (
  candidacy_id VARCHAR(64) NOT NULL,
  round INT NOT NULL,
  state INT NOT NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  PRIMARY KEY (candidacy_id, round)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE acquired_blocs (
  candidate_id VARCHAR(128) NOT NULL,
  certification_code VARCHAR(64) NOT NULL,
  bloc_code VARCHAR(64) NOT NULL,
  acquired_date INT NOT NULL,
  expiry_date INT NOT NULL,
  source_deliberation VARCHAR(255) NOT NULL,
  PRIMARY KEY (candidate_id, certification_code, bloc_code, source_deliberation),
  KEY acquired_blocs_by_source (source_deliberation)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  time BIGINT NOT NULL,
  actor VARCHAR(160) NOT NULL,
  action VARCHAR(64) NOT NULL,
  resource VARCHAR(255) NOT NULL,
  detail VARCHAR(1000) NOT NULL,
  KEY audit_log_by_resource (resource, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE idempotency_keys (
  method VARCHAR(128) NOT NULL,
  request_id VARCHAR(64) NOT NULL,
  resource_name VARCHAR(512) NOT NULL,
  request_hash VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (method, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
