#!/usr/bin/env bash
# Benchmark scenario for referential-svc (see bench/README.md).
#
#   bench/run.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_CONCURRENCY (32), BENCH_DURATION (20s), BENCH_WARMUP (2s),
#              BENCH_RSS_DURATION (60s; 0 skips the RSS run), BENCH_NAME (version to get).
#
# Starts referential-svc on SQLite in a temp dir with the no-op BenchService on, loads the seed
# référentiel, then measures (1) Echo, the floor of the platform (gRPC + interceptor + logs +
# metrics), (2) GetVersion of a published version, and (3) the server's resident memory after a
# long GetVersion run. Exits non-zero if a run fails; prints the targets without enforcing them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$repo/$build"
svc="$build/referential-svc/referential-svc"
loadgen="$build/bench/loadgen"
data="$repo/referential-svc/data/cqp-technicien-maintenance-alimentaire.json"

concurrency="${BENCH_CONCURRENCY:-32}"
duration="${BENCH_DURATION:-20s}"
warmup="${BENCH_WARMUP:-2s}"
rss_duration="${BENCH_RSS_DURATION:-60s}"
name="${BENCH_NAME:-certifications/CQP-TMSA/versions/1}"

for bin in "$svc" "$loadgen"; do
  if [[ ! -x "$bin" ]]; then
    echo "run.sh: $bin not found; build it: ninja -C $build referential-svc loadgen" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/parcours-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cfg="$work/referential.yaml"
cat >"$cfg" <<EOF
database:
  dsn: sqlite:$work/referential.db
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  bench_echo: true
  port_file: $work/ports.json
  drain_timeout: 5s
EOF

echo "== set-up in $work"
"$svc" migrate --config "$cfg" >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
"$svc" load --config "$cfg" "$data" >"$work/load.log" 2>&1 || { cat "$work/load.log" >&2; exit 1; }

# Server logs (one access-log line per call) go to a file: the terminal must not be the bottleneck.
"$svc" serve --config "$cfg" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$work/ports.json" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: referential-svc exited during start-up:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
[[ -s "$work/ports.json" ]] || { echo "run.sh: no port file after 10 s" >&2; cat "$work/server.log" >&2; exit 1; }
port="$(sed -E 's/.*"port":([0-9]+).*/\1/' "$work/ports.json")"
metrics_port="$(sed -E 's/.*"metrics_port":([0-9]+).*/\1/' "$work/ports.json")"
target="127.0.0.1:$port"
echo "== referential-svc pid $server_pid on $target (metrics :$metrics_port)"

echo_json="" gv_json="" rss_json=""
# Runs loadgen, shows its summary, returns its JSON line in the named variable.
run_load() {
  local var="$1"; shift
  local out
  out="$("$loadgen" --target "$target" "$@")" || { echo "$out" >&2; echo "run.sh: loadgen failed" >&2; exit 1; }
  echo "$out" | grep -v '^{' | sed 's/^/   /'
  printf -v "$var" '%s' "$(echo "$out" | grep '^{' | tail -1)"
}
json_field() {  # json_field JSON KEY -> number
  echo "$1" | sed -E "s/.*\"$2\":([0-9.]+).*/\1/"
}

echo "== echo: BenchService/Echo, concurrency $concurrency, $duration"
run_load echo_json --scenario echo --concurrency "$concurrency" --duration "$duration" --warmup "$warmup"
echo "== get_version: ReferentialService/GetVersion $name, concurrency $concurrency, $duration"
run_load gv_json --scenario get_version --name "$name" --concurrency "$concurrency" \
  --duration "$duration" --warmup "$warmup"

rss_kb="" hwm_kb=""
if [[ "$rss_duration" != "0" && "$rss_duration" != "0s" ]]; then
  echo "== memory: get_version for $rss_duration, then VmRSS"
  run_load rss_json --scenario get_version --name "$name" --concurrency "$concurrency" \
    --duration "$rss_duration" --warmup 0s
  rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")"
  hwm_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
fi

echo_rps="$(json_field "$echo_json" rps)"
gv_rps="$(json_field "$gv_json" rps)"
echo_err="$(json_field "$echo_json" errors)"
gv_err="$(json_field "$gv_json" errors)"

echo
echo "== summary (concurrency $concurrency, $duration per run, $(nproc) CPUs shared by server and load generator)"
awk -v e="$echo_rps" -v g="$gv_rps" -v ee="$echo_err" -v ge="$gv_err" \
    -v ep50="$(json_field "$echo_json" p50_us)" -v ep99="$(json_field "$echo_json" p99_us)" \
    -v gp50="$(json_field "$gv_json" p50_us)" -v gp99="$(json_field "$gv_json" p99_us)" \
    -v rss="$rss_kb" -v hwm="$hwm_kb" -v rr="$(json_field "$rss_json" rps)" 'BEGIN {
  printf "echo         %10.0f calls/s   p50 %6d us   p99 %6d us   errors %d\n", e, ep50, ep99, ee
  printf "get_version  %10.0f calls/s   p50 %6d us   p99 %6d us   errors %d\n", g, gp50, gp99, ge
  ratio = (e > 0) ? g / e : 0
  printf "ratio        get_version/echo = %.2f   target >= 0.5   %s\n", ratio, (ratio >= 0.5 ? "OK" : "MISSED")
  if (rss != "") {
    mb = rss / 1024
    printf "memory       VmRSS %.1f MB (peak %.1f MB) after the long run at %.0f calls/s   target < 50 MB   %s\n", mb, hwm / 1024, rr, (mb < 50 ? "OK" : "MISSED")
  }
}'
echo "json $echo_json"
echo "json $gv_json"
[[ -z "$rss_json" ]] || echo "json $rss_json"

if [[ "$echo_err" != "0" || "$gv_err" != "0" ]]; then
  echo "run.sh: calls failed during the benchmark (see errors above)" >&2
  exit 1
fi
