-- Indicators on people (keep in step with ../sqlite/0009_indicator_people.sql); see src/indicators.h.
--
-- The rollups now count the people behind services, outcomes and satisfaction responses (small
-- cells are suppressed on people, and one person may have many items in a cell: the people with
-- any item per month, and the items repeated within a kind), and a restart of a file's follow-up
-- carries the last month of the span before it (a total over a period counts the file once). `cep-svc migrate` adds both to the rollups of the cases stored before,
-- right after this migration (BackfillRollups, src/sql_repository.cc): in chunks of cases, each
-- with its progress here in one transaction, so an interrupted run resumes where it stopped and
-- two runs at once share the chunks. The row is gone when it is done (or after
-- `cep-svc rebuild-indicators`, which recounts everything).
CREATE TABLE indicator_backfill (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  after_case VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO indicator_backfill (name, after_case) VALUES ('people_and_restarts', '');
