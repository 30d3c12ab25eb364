-- referential-svc schema, MySQL/MariaDB dialect (keep in step with ../sqlite/0001_init.sql).
-- Identity fields that lists filter on are columns; the rest of a resource is its protobuf
-- encoding in `doc` (read and written whole, never queried inside), as Temporal stores blobs.
-- Binary collation: codes compare exactly as in SQLite; search_text is folded by the service.
CREATE TABLE certifications (
  code VARCHAR(64) NOT NULL PRIMARY KEY,
  kind INT NOT NULL,
  level INT NOT NULL,
  active TINYINT NOT NULL,
  title VARCHAR(500) NOT NULL,
  search_text VARCHAR(1000) NOT NULL,
  doc LONGBLOB NOT NULL,
  current_version INT NOT NULL DEFAULT 0,
  last_version_number INT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  KEY certifications_kind (kind, code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE certification_certifiers (
  code VARCHAR(64) NOT NULL,
  certifier VARCHAR(255) NOT NULL,
  PRIMARY KEY (code, certifier),
  KEY certification_certifiers_by_name (certifier, code),
  CONSTRAINT certification_certifiers_code FOREIGN KEY (code) REFERENCES certifications (code) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE versions (
  code VARCHAR(64) NOT NULL,
  number INT NOT NULL,
  state INT NOT NULL,
  doc LONGBLOB NOT NULL,
  version BIGINT NOT NULL,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  publish_time BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (code, number),
  CONSTRAINT versions_code FOREIGN KEY (code) REFERENCES certifications (code) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE idempotency_keys (
  method VARCHAR(128) NOT NULL,
  request_id VARCHAR(64) NOT NULL,
  resource_name VARCHAR(512) NOT NULL,
  request_hash VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (method, request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
