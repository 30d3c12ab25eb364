-- National indicators (keep in step with ../mysql/0003_indicators.sql); see src/indicators.h.
--
-- A case is counted under its beneficiary's attributes as of its opening, kept with the case so a
-- later change of the person's row (registration after anonymisation) never moves old figures.
ALTER TABLE cases ADD COLUMN b_region VARCHAR(8) NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN b_sex BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN b_birth_year BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN b_status BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN b_qualification BIGINT NOT NULL DEFAULT 0;
UPDATE cases SET
  b_region = COALESCE((SELECT region FROM beneficiaries b WHERE b.pseudonym = cases.pseudonym), ''),
  b_sex = COALESCE((SELECT sex FROM beneficiaries b WHERE b.pseudonym = cases.pseudonym), 0),
  b_birth_year = COALESCE((SELECT birth_year FROM beneficiaries b WHERE b.pseudonym = cases.pseudonym), 0),
  b_status = COALESCE((SELECT status FROM beneficiaries b WHERE b.pseudonym = cases.pseudonym), 0),
  b_qualification = COALESCE((SELECT qualification_level FROM beneficiaries b WHERE b.pseudonym = cases.pseudonym), 0);
-- The rollups: one row per (cuboid, measure, month, cell, detail); dimensions a cuboid does not
-- keep hold '' or 0. Maintained in the same transaction as every case write. Cases stored before
-- this migration are counted by `cep-svc rebuild-indicators` (docs/architecture.md).
CREATE TABLE indicator_rollup (
  cuboid BIGINT NOT NULL,
  measure BIGINT NOT NULL,
  month BIGINT NOT NULL,
  operator_id VARCHAR(64) NOT NULL,
  region VARCHAR(8) NOT NULL,
  sex BIGINT NOT NULL,
  age_band BIGINT NOT NULL,
  status BIGINT NOT NULL,
  qualification BIGINT NOT NULL,
  level VARCHAR(16) NOT NULL,
  demands BIGINT NOT NULL,
  detail BIGINT NOT NULL,
  value BIGINT NOT NULL,
  PRIMARY KEY (cuboid, measure, month, operator_id, region, sex, age_band, status, qualification, level, demands, detail)
);
