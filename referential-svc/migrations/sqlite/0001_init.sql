-- referential-svc schema, SQLite dialect (keep in step with ../mysql/0001_init.sql).
-- Identity fields that lists filter on are columns; the rest of a resource is its protobuf
-- encoding in `doc` (read and written whole, never queried inside), as Temporal stores blobs.
CREATE TABLE certifications (
  code TEXT NOT NULL PRIMARY KEY,
  kind INTEGER NOT NULL,
  level INTEGER NOT NULL,
  active INTEGER NOT NULL,
  title TEXT NOT NULL,
  search_text TEXT NOT NULL,
  doc BLOB NOT NULL,
  current_version INTEGER NOT NULL DEFAULT 0,
  last_version_number INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
);
CREATE INDEX certifications_kind ON certifications (kind, code);
CREATE TABLE certification_certifiers (
  code TEXT NOT NULL REFERENCES certifications (code) ON DELETE CASCADE,
  certifier TEXT NOT NULL,
  PRIMARY KEY (code, certifier)
);
CREATE INDEX certification_certifiers_by_name ON certification_certifiers (certifier, code);
CREATE TABLE versions (
  code TEXT NOT NULL REFERENCES certifications (code) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  state INTEGER NOT NULL,
  doc BLOB NOT NULL,
  version INTEGER NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  publish_time INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (code, number)
);
CREATE TABLE idempotency_keys (
  method TEXT NOT NULL,
  request_id TEXT NOT NULL,
  resource_name TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (method, request_id)
);
