#!/usr/bin/env bash
# Bulk-import benchmark of cep-svc: the synthetic national dataset through ImportCases, against
# MariaDB's own LOAD DATA of the same rows as the baseline (see bench/README.md).
#
#   bench/run_cep_import.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_TOTAL (5791059; e.g. 200000 for a quick run), BENCH_WORKERS (2),
#              BENCH_BATCH (1000 rows per message), BENCH_SEED (20150101),
#              BENCH_MAX_CONNECTIONS (16: cep-svc's database pool).
#              BENCH_IMPORT_BATCH: cep-svc's import.max_batch_rows (its default when unset).
#              BENCH_SHARDING (true: one stream per operator and worker; false: every row as
#              operator ft, one stream per worker: an operator importing its history alone).
#              BENCH_QUERIES=1: also run bench/cep_queries on the imported dataset.
#              BENCH_WRAP: a command put before cep-svc (e.g. "heaptrack -o /tmp/cep"; the RSS
#              figures are then the wrapper's).
#
# Starts a private MariaDB on loopback (as run_evaluation.sh), cep-svc on database `cep` (migrated,
# a pseudonym key file in the temp dir), creates every operator of the dataset through gRPC, runs
# cep_import, reads cep-svc's peak RSS (VmHWM), then loads the same rows as TSV with
# LOAD DATA LOCAL INFILE into a scratch table of database `baseline`; then the floor: every row the
# import stored, dumped with SELECT ... INTO OUTFILE and loaded with LOAD DATA into empty copies of
# the same tables. Prints the import's rows/s, seconds, the ratios to both and the peak RSS
# against the targets (printed OK / MISSED, not enforced). Exits non-zero if a step fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$repo/$build"
cep_svc="$build/cep-svc/cep-svc"
cep_import="$build/bench/cep_import"
cep_dataset="$build/bench/cep_dataset"

total="${BENCH_TOTAL:-5791059}"
workers="${BENCH_WORKERS:-2}"
batch="${BENCH_BATCH:-1000}"
seed="${BENCH_SEED:-20150101}"
max_connections="${BENCH_MAX_CONNECTIONS:-16}"
sharding="${BENCH_SHARDING:-true}"
# Targets: the seed's 5,791,059 entries in 90 s (>= 65,000 rows/s); cep-svc's RSS <= 256 MB.
target_rows_per_s=65000
target_rss_mb=256

for bin in "$cep_svc" "$cep_import" "$cep_dataset"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_cep_import.sh: $bin not found; build it: ninja -C $build cep-svc cep_import cep_dataset" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/parcours-bench-cep-import.XXXXXX")"
cep_pid="" mariadb_pid=""
cleanup() {
  stop "$cep_pid"
  stop "$mariadb_pid"
  rm -rf "$work"
}
trap cleanup EXIT


start_mariadb "$work"
sql -e 'CREATE DATABASE cep; CREATE DATABASE baseline;'

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/pseudonym.key"
cat >"$work/cep.yaml" <<EOF
database:
  dsn: mysql://root@127.0.0.1:$db_port/cep
  max_connections: $max_connections
pseudonym_key_file: $work/pseudonym.key
${BENCH_IMPORT_BATCH:+import:
  max_batch_rows: $BENCH_IMPORT_BATCH}
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  port_file: $work/cep.ports
  drain_timeout: 5s
EOF
"$cep_svc" migrate --config "$work/cep.yaml" >"$work/cep-migrate.log" 2>&1 \
  || { cat "$work/cep-migrate.log" >&2; exit 1; }
${BENCH_WRAP:-} "$cep_svc" serve --config "$work/cep.yaml" >"$work/cep.log" 2>&1 &
cep_pid=$!
for _ in $(seq 100); do
  [[ -s "$work/cep.ports" ]] && break
  kill -0 "$cep_pid" 2>/dev/null || { echo "run_cep_import.sh: cep-svc exited during start-up:" >&2; cat "$work/cep.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$work/cep.ports" ]] || { echo "run_cep_import.sh: no port file from cep-svc after 10 s" >&2; cat "$work/cep.log" >&2; exit 1; }
target="127.0.0.1:$(sed -E 's/.*"port":([0-9]+).*/\1/' "$work/cep.ports")"
echo "== cep-svc pid $cep_pid on $target (database pool $max_connections)"
rss_start_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$cep_pid/status")"
cep_cpu0="$(cpu_s "$cep_pid")" db_cpu0="$(cpu_s "$mariadb_pid")"

echo "== cep_import: $total rows, $workers workers, $batch rows per message, seed $seed"
status=0
out="$("$cep_import" --target "$target" --create-operators --operator-sharding="$sharding" --workers "$workers" \
  --total "$total" --batch "$batch" --seed "$seed")" || status=$?
echo "$out" | grep -v '^{' | sed 's/^/   /'
json="$(echo "$out" | grep '^{' | tail -1 || true)"
[[ -n "$json" ]] || { echo "run_cep_import.sh: cep_import failed (exit $status) before its report" >&2; tail -20 "$work/cep.log" >&2; exit 1; }
hwm_kb="$(awk '/^VmHWM/ {print $2}' "/proc/$cep_pid/status")"
cep_cpu="$(awk -v a="$(cpu_s "$cep_pid")" -v b="$cep_cpu0" 'BEGIN { printf "%.1f", a - b }')"
db_cpu="$(awk -v a="$(cpu_s "$mariadb_pid")" -v b="$db_cpu0" 'BEGIN { printf "%.1f", a - b }')"
rss_end_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$cep_pid/status")"
json_field() { echo "$json" | sed -E "s/.*\"$1\":([0-9.]+).*/\1/"; }
rows_s="$(json_field rows_per_s)"
secs="$(json_field elapsed_s)"
created="$(json_field created)"
stored="$(sql -N cep -e 'SELECT COUNT(*) FROM cases')"
events="$(sql -N cep -e 'SELECT COUNT(*) FROM activity')"
people="$(sql -N cep -e 'SELECT COUNT(*) FROM beneficiaries')"

# Baseline: the same rows as TSV, loaded by the server itself into a table of the TSV's columns.
echo "== baseline: cep_dataset --format tsv, then LOAD DATA LOCAL INFILE"
"$cep_dataset" --format tsv --seed "$seed" --total "$total" --out "$work/cases.tsv"
sql baseline -e "CREATE TABLE cases_tsv (
  external_id VARCHAR(128) NOT NULL PRIMARY KEY, operator_id VARCHAR(64) NOT NULL, operator_kind VARCHAR(32) NOT NULL,
  beneficiary_external_id VARCHAR(64) NOT NULL, birth_year INT NOT NULL, sex VARCHAR(8) NOT NULL,
  department VARCHAR(8) NOT NULL, region VARCHAR(8) NOT NULL, status VARCHAR(16) NOT NULL,
  qualification_level INT NOT NULL, level VARCHAR(16) NOT NULL, opening_date DATE NOT NULL, closing_date DATE NULL,
  closing_reason VARCHAR(32) NULL, demands SET('PROJECT','TAKE_STOCK','SKILLS_RECOGNITION','OTHER') NOT NULL,
  service_count INT NOT NULL, services VARCHAR(255) NOT NULL, outcome_kind VARCHAR(32) NULL, outcome_date DATE NULL,
  candidacy VARCHAR(64) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
load_start=$(date +%s.%N)
sql --local-infile=1 baseline -e "LOAD DATA LOCAL INFILE '$work/cases.tsv' INTO TABLE cases_tsv
  FIELDS TERMINATED BY '\t' LINES TERMINATED BY '\n'"
load_end=$(date +%s.%N)
loaded="$(sql -N baseline -e 'SELECT COUNT(*) FROM cases_tsv')"

# Second baseline, the floor of this import: every row it stored (cases, beneficiaries, contacts,
# events, rollups, audit), dumped by the server, then loaded by LOAD DATA into empty copies of the
# same tables (same columns and indexes), one after the other.
echo "== floor: SELECT ... INTO OUTFILE of every table the import filled, LOAD DATA into copies"
mkdir -p "$work/dump" && chmod 777 "$work/dump"
sql -e 'CREATE DATABASE floor'
floor_tables=(cases beneficiaries contacts activity indicator_rollup audit_log)
floor_rows=0 floor_detail=""
for t in "${floor_tables[@]}"; do
  sql cep -e "SELECT * INTO OUTFILE '$work/dump/$t.tsv' FROM $t"
  sql -e "CREATE TABLE floor.$t LIKE cep.$t"
done
floor_start=$(date +%s.%N)
for t in "${floor_tables[@]}"; do
  sql floor -e "LOAD DATA INFILE '$work/dump/$t.tsv' INTO TABLE $t"
done
floor_end=$(date +%s.%N)
for t in "${floor_tables[@]}"; do
  n="$(sql -N floor -e "SELECT COUNT(*) FROM $t")"
  floor_rows=$((floor_rows + n)) floor_detail+="$t $n, "
done

echo
echo "== summary ($total rows, $(nproc) CPUs shared by MariaDB, cep-svc and the load generator)"
awk -v rs="$rows_s" -v secs="$secs" -v created="$created" -v stored="$stored" -v events="$events" -v people="$people" \
    -v ls="$load_start" -v le="$load_end" -v loaded="$loaded" -v total="$total" \
    -v hwm="$hwm_kb" -v rss0="$rss_start_kb" -v rss1="$rss_end_kb" \
    -v trs="$target_rows_per_s" -v trss="$target_rss_mb" -v cep_cpu="$cep_cpu" -v db_cpu="$db_cpu" \
    -v fs="$floor_start" -v fe="$floor_end" -v frows="$floor_rows" -v fdetail="${floor_detail%, }" 'BEGIN {
  lsecs = le - ls; lrate = (lsecs > 0 ? loaded / lsecs : 0)
  fsecs = fe - fs; frate = (fsecs > 0 ? created / fsecs : 0)
  printf "import      %9.0f rows/s   %7.1f s   created %d (cases stored %d, beneficiaries %d, activity events %d)\n", rs, secs, created, stored, people, events
  printf "LOAD DATA   %9.0f rows/s   %7.1f s   (%d rows, one table, no index but the key)\n", lrate, lsecs, loaded
  printf "ratio       import / LOAD DATA = %.2f (rows/s)\n", (lrate > 0 ? rs / lrate : 0)
  printf "floor       LOAD DATA of every row the import stored, into copies of its tables: %.1f s, %.0f cases/s\n", fsecs, frate
  printf "            (%d rows: %s); import / floor = %.2f\n", frows, fdetail, (frate > 0 ? rs / frate : 0)
  printf "throughput  target >= %d rows/s (5,791,059 rows in 90 s)   %s   (full dataset at this rate: %.0f s)\n", trs, (rs >= trs ? "OK" : "MISSED"), (rs > 0 ? 5791059 / rs : 0)
  printf "cpu         cep-svc %.1f s, MariaDB %.1f s during the import (the load generator: the rest of 2 x %.1f s)\n", cep_cpu, db_cpu, secs
  printf "memory      cep-svc VmHWM %.0f MB (RSS %.0f MB at start, %.0f MB at the end)   target <= %d MB   %s\n", hwm / 1024, rss0 / 1024, rss1 / 1024, trss, (hwm / 1024 <= trss ? "OK" : "MISSED")
}'
echo "json $json"
if [[ "$status" != 0 ]]; then
  echo "run_cep_import.sh: import streams failed (see above)" >&2
  { grep -E '"level":"(warn|warning|error|fatal)"' "$work/cep.log" | tail -5 >&2; } || true
  exit 1
fi

# BENCH_QUERIES=1: the indicator queries (bench/cep_queries) on the dataset just imported, so one
# full-size import serves both figures.
if [[ "${BENCH_QUERIES:-0}" = 1 ]]; then
  echo "== indicator_rollup rows per cuboid"
  sql -N cep -e 'SELECT cuboid, COUNT(*) FROM indicator_rollup GROUP BY cuboid' | sed 's/^/   /'
  echo "== cep_queries on the imported dataset"
  "$build/bench/cep_queries" --target "$target" --repeat "${BENCH_REPEAT:-50}" | grep -v '^{' | sed 's/^/   /'
  echo "   cep-svc VmHWM after the queries: $(awk '/^VmHWM/ {print $2 / 1024 " MB"}' "/proc/$cep_pid/status")"
fi
