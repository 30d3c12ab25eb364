-- One row per region that has had a designation (keep in step with ../mysql/0005_designation_locks.sql).
--
-- DesignateOperator locks its region's row before it checks that the new period overlaps none
-- (on SQLite, where transactions already run one at a time, the row is only written).
CREATE TABLE designation_locks (
  region TEXT NOT NULL PRIMARY KEY
);
