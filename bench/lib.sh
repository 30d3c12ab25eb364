# Shared by the bench/run_*.sh scripts (sourced): process stop, a free loopback port, a private
# MariaDB in a temp dir (the settings every benchmark uses), CPU seconds of a process.

# stop PID: SIGTERM, 15 s grace, then SIGKILL.
stop() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# free_port: a TCP port nobody listens on, on loopback.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/free-port.sh"

# start_mariadb WORK_DIR: a private MariaDB (data under WORK_DIR/mariadb, --no-defaults, loopback,
# 1 GB buffer pool, 512 MB redo log, LOAD DATA LOCAL allowed; the redo log is flushed at every
# commit, MariaDB's default and production's: a figure measured with a looser setting would count
# writes a crash can lose). Sets
# mariadb_pid and db_port and defines sql() (the mariadb client on it). Exits on failure.
# BENCH_BUFFER_POOL overrides the buffer pool size; BENCH_MARIADB_ARGS adds server options (e.g.
# "--slow-query-log=1 --long-query-time=0 --slow-query-log-file=/tmp/slow.log" to see which
# statements take the database's time).
start_mariadb() {
  local work="$1"
  for tool in mariadb-install-db mariadb; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (apt-get install mariadb-server)" >&2; exit 2; }
  done
  db_port="$(free_port)"
  echo "== set-up in $work: MariaDB on 127.0.0.1:$db_port"
  mariadb-install-db --no-defaults --datadir="$work/mariadb/data" --user=root \
    --auth-root-authentication-method=normal --skip-test-db >"$work/mariadb-install.log" 2>&1 \
    || { cat "$work/mariadb-install.log" >&2; exit 1; }
  PATH="$PATH:/usr/sbin" mariadbd --no-defaults --datadir="$work/mariadb/data" --socket="$work/mariadb/sock" \
    --port="$db_port" --bind-address=127.0.0.1 --user=root --skip-log-bin \
    --innodb-buffer-pool-size="${BENCH_BUFFER_POOL:-1G}" --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=1 \
    --max-connections=500 --local-infile=1 ${BENCH_MARIADB_ARGS:-} \
    >"$work/mariadb.log" 2>&1 &
  mariadb_pid=$!
  sql() { mariadb --no-defaults -uroot -h127.0.0.1 -P"$db_port" "$@"; }
  for _ in $(seq 300); do
    sql -e 'SELECT 1' >/dev/null 2>&1 && return 0
    kill -0 "$mariadb_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$0: MariaDB did not start:" >&2; tail -20 "$work/mariadb.log" >&2; exit 1
}

# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }
