-- One row per region that has had a designation (keep in step with ../sqlite/0005_designation_locks.sql).
--
-- DesignateOperator locks its region's row before it checks that the new period overlaps none:
-- two designations for one region at once would each find no overlap (READ COMMITTED sees no
-- uncommitted row and locks no gap) and both commit. The designations themselves stay in
-- `designations`; this row only orders the writers of one region.
CREATE TABLE designation_locks (
  region VARCHAR(8) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
