#!/usr/bin/env bash
# Indicator-query and case-creation benchmarks of cep-svc (see bench/README.md).
#
#   bench/run_cep_queries.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_TOTAL (5791059 rows imported first; 0 = no import, the queries then run on
#              empty rollups), BENCH_WORKERS (2), BENCH_BATCH (1000), BENCH_SEED (20150101) for the
#              import (as run_cep_import.sh); BENCH_REPEAT (50 timed calls per query kind);
#              BENCH_INFLIGHT (16), BENCH_DURATION (20s), BENCH_WARMUP (2s), BENCH_BENEFICIARIES
#              (cep_open_cases' default: 6000 x (warm-up + duration) s), BENCH_OPENING_DATE (today)
#              for case creation; BENCH_MAX_CONNECTIONS (16: each cep-svc's database pool).
#
# Starts a private MariaDB on loopback (as run_cep_import.sh, same InnoDB settings), cep-svc on
# database `cep` (migrated, server.bench_echo on), imports the synthetic dataset with cep_import,
# prints the size of indicator_rollup per cuboid and runs cep_queries as national. Then, so that
# case creation is not measured on top of the big dataset, it stops that cep-svc and starts a
# second one on a fresh database `cep_cases` of the same MariaDB (whose buffer pool still holds the
# first database's pages) and runs cep_open_cases (Echo baseline, then OpenCase). Prints both
# summaries and each cep-svc's peak RSS (VmHWM). Exits non-zero if a step or a call fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$repo/$build"
cep_svc="$build/cep-svc/cep-svc"
cep_import="$build/bench/cep_import"
cep_queries="$build/bench/cep_queries"
cep_open_cases="$build/bench/cep_open_cases"

total="${BENCH_TOTAL:-5791059}"
workers="${BENCH_WORKERS:-2}"
batch="${BENCH_BATCH:-1000}"
seed="${BENCH_SEED:-20150101}"
repeat="${BENCH_REPEAT:-50}"
inflight="${BENCH_INFLIGHT:-16}"
duration="${BENCH_DURATION:-20s}"
warmup="${BENCH_WARMUP:-2s}"
beneficiaries="${BENCH_BENEFICIARIES:-0}"
opening_date="${BENCH_OPENING_DATE:-}"
max_connections="${BENCH_MAX_CONNECTIONS:-16}"

for bin in "$cep_svc" "$cep_import" "$cep_queries" "$cep_open_cases"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_cep_queries.sh: $bin not found; build it: ninja -C $build cep-svc cep_import cep_queries cep_open_cases" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/parcours-bench-cep-queries.XXXXXX")"
cep_pid="" cases_pid="" mariadb_pid=""
cleanup() {
  stop "$cep_pid"
  stop "$cases_pid"
  stop "$mariadb_pid"
  rm -rf "$work"
}
trap cleanup EXIT


start_mariadb "$work"
sql -e 'CREATE DATABASE cep; CREATE DATABASE cep_cases;'
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/pseudonym.key"

# start_cep NAME DATABASE: migrates and serves a cep-svc on DATABASE (bench_echo on); sets
# started_pid and started_target.
start_cep() {
  local name="$1" database="$2"
  cat >"$work/$name.yaml" <<EOF
database:
  dsn: mysql://root@127.0.0.1:$db_port/$database
  max_connections: $max_connections
pseudonym_key_file: $work/pseudonym.key
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  port_file: $work/$name.ports
  drain_timeout: 5s
  bench_echo: true
EOF
  "$cep_svc" migrate --config "$work/$name.yaml" >"$work/$name-migrate.log" 2>&1 \
    || { cat "$work/$name-migrate.log" >&2; exit 1; }
  "$cep_svc" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 100); do
    [[ -s "$work/$name.ports" ]] && break
    kill -0 "$started_pid" 2>/dev/null || { echo "run_cep_queries.sh: cep-svc ($name) exited during start-up:" >&2; cat "$work/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$work/$name.ports" ]] || { echo "run_cep_queries.sh: no port file from cep-svc ($name) after 10 s" >&2; cat "$work/$name.log" >&2; exit 1; }
  started_target="127.0.0.1:$(sed -E 's/.*"port":([0-9]+).*/\1/' "$work/$name.ports")"
}
hwm_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
server_errors() {  # the last warnings / errors of a cep-svc log
  { grep -E '"level":"(warn|warning|error|fatal)"' "$work/$1.log" | tail -5 >&2; } || true
}

# --- 1. Queries on the national dataset.
start_cep cep cep
cep_pid="$started_pid" target="$started_target"
echo "== cep-svc pid $cep_pid on $target (database cep, pool $max_connections)"
if [[ "$total" != 0 ]]; then
  echo "== cep_import: $total rows, $workers workers, $batch rows per message, seed $seed"
  status=0
  out="$("$cep_import" --target "$target" --create-operators --operator-sharding=true --workers "$workers" \
    --total "$total" --batch "$batch" --seed "$seed")" || status=$?
  echo "$out" | sed 's/^/   /'
  if [[ "$status" != 0 ]]; then
    echo "run_cep_queries.sh: cep_import failed (exit $status)" >&2; server_errors cep; exit 1
  fi
else
  echo "== BENCH_TOTAL=0: no import, the queries run on empty rollups"
fi
echo "== indicator_rollup (rows per cuboid; cuboid dims in cep-svc/src/indicators.cc Cuboids())"
sql -t cep -e "SELECT cuboid,
    CASE cuboid WHEN 4 THEN 'region' WHEN 1 THEN 'operator x region x sex x status'
      WHEN 3 THEN 'operator x region x level x demands'
      WHEN 2 THEN 'region x sex x age band x status x qualification x level (national)'
      WHEN 0 THEN 'all but qualification (socle cross)' ELSE '?' END AS dims,
    COUNT(*) AS 'rows' FROM indicator_rollup GROUP BY cuboid ORDER BY COUNT(*)"
sql cep -e 'ANALYZE TABLE indicator_rollup' >/dev/null  # fresh size statistics
sql -N cep -e "SELECT CONCAT('total ', TABLE_ROWS, ' rows (estimate), data ', ROUND(DATA_LENGTH / 1048576, 1), ' MB, indexes ',
    ROUND(INDEX_LENGTH / 1048576, 1), ' MB') FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = 'cep' AND TABLE_NAME = 'indicator_rollup'"

echo "== cep_queries: $repeat calls per kind, sequential, as national"
queries_status=0
queries_out="$("$cep_queries" --target "$target" --repeat "$repeat")" || queries_status=$?
echo "$queries_out" | grep -v '^{' | sed 's/^/   /'
queries_json="$(echo "$queries_out" | grep '^{' | tail -1 || true)"
[[ -n "$queries_json" ]] || { echo "run_cep_queries.sh: cep_queries failed (exit $queries_status) before its report" >&2; server_errors cep; exit 1; }
cep_hwm="$(hwm_mb "$cep_pid")"
stop "$cep_pid"
cep_pid=""

# --- 2. Case creation on a fresh database (second cep-svc; the first one is stopped).
start_cep cases cep_cases
cases_pid="$started_pid" cases_target="$started_target"
echo "== cep-svc pid $cases_pid on $cases_target (fresh database cep_cases, pool $max_connections)"
echo "== cep_open_cases: $inflight in flight, $duration after $warmup warm-up (Echo, then OpenCase)"
open_args=(--target "$cases_target" --inflight "$inflight" --duration "$duration" --warmup "$warmup"
  --beneficiaries "$beneficiaries" --watch "cep-svc=$cases_pid,mariadb=$mariadb_pid")
[[ -n "$opening_date" ]] && open_args+=(--opening_date "$opening_date")
open_status=0
open_out="$("$cep_open_cases" "${open_args[@]}")" || open_status=$?
echo "$open_out" | grep -v '^{' | sed 's/^/   /'
open_json="$(echo "$open_out" | grep '^{' | tail -1 || true)"
[[ -n "$open_json" ]] || { echo "run_cep_queries.sh: cep_open_cases failed (exit $open_status) before its report" >&2; server_errors cases; exit 1; }
cases_hwm="$(hwm_mb "$cases_pid")"
cases_stored="$(sql -N cep_cases -e 'SELECT COUNT(*) FROM cases')"

echo
echo "== summary ($total rows imported; $(nproc) CPUs shared by MariaDB, cep-svc and the client)"
echo "queries (database cep, $total rows; p50 / p99 / max ms over $repeat sequential calls):"
echo "$queries_out" | grep -E '^(kind|entries_|active_|national_|socle_|targets)' | sed 's/^/  /'
echo "case creation (fresh database cep_cases, not on top of the dataset; same MariaDB):"
echo "$open_out" | grep -E '^(echo|open_case|ratio|targets) |cpu us/call' | sed 's/^/  /'
echo "  cases stored $cases_stored"
echo "memory      cep-svc VmHWM: $cep_hwm MB (import + queries), $cases_hwm MB (case creation)"
echo "json $queries_json"
echo "json $open_json"
if [[ "$queries_status" != 0 || "$open_status" != 0 ]]; then
  echo "run_cep_queries.sh: calls failed (see above)" >&2
  server_errors cep
  server_errors cases
  exit 1
fi
