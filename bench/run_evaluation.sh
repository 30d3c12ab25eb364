#!/usr/bin/env bash
# Benchmark scenario for evaluation-svc: full jury cycles (see bench/README.md).
#
#   bench/run_evaluation.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_CONCURRENCY (8), BENCH_CANDIDATES (200), BENCH_MEMBERS (3),
#              BENCH_VERSION (certifications/CQP-TMSA/versions/1).
#
# Starts a private MariaDB on loopback (as scripts/dev test does), referential-svc and
# evaluation-svc on it, loads the seed référentiel, then runs jury_cycle: BENCH_CANDIDATES
# candidacies, each through the whole jury (22 calls with 3 members), BENCH_CONCURRENCY at a time.
# Prints candidacies/s, p50/p99 per RPC and the synthesis grid's p99 against its target.
# Exits non-zero if a step fails or a call fails; the target is printed as OK / MISSED, not enforced.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$repo/$build"
ref_svc="$build/referential-svc/referential-svc"
eval_svc="$build/evaluation-svc/evaluation-svc"
jury_cycle="$build/bench/jury_cycle"
data="$repo/referential-svc/data/cqp-technicien-maintenance-alimentaire.json"

concurrency="${BENCH_CONCURRENCY:-8}"
candidates="${BENCH_CANDIDATES:-200}"
members="${BENCH_MEMBERS:-3}"
version="${BENCH_VERSION:-certifications/CQP-TMSA/versions/1}"
grid_target_ms=50

for bin in "$ref_svc" "$eval_svc" "$jury_cycle"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_evaluation.sh: $bin not found; build it: ninja -C $build referential-svc evaluation-svc jury_cycle" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/parcours-bench-eval.XXXXXX")"
ref_pid="" eval_pid="" mariadb_pid=""
cleanup() {
  stop "$eval_pid"
  stop "$ref_pid"
  stop "$mariadb_pid"
  rm -rf "$work"
}
trap cleanup EXIT

start_mariadb "$work"
sql -e 'CREATE DATABASE referential; CREATE DATABASE evaluation;'

cat >"$work/referential.yaml" <<EOF
database:
  dsn: mysql://root@127.0.0.1:$db_port/referential
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  port_file: $work/referential.ports
  drain_timeout: 5s
EOF

# Starts `$1 serve --config $2` in the background (logs to $3), waits for port file $4;
# sets the named variable $5 to its pid.
serve() {
  local bin="$1" cfg="$2" logf="$3" ports="$4" var="$5" pid
  "$bin" serve --config "$cfg" >"$logf" 2>&1 &
  pid=$!
  printf -v "$var" '%s' "$pid"
  for _ in $(seq 100); do
    [[ -s "$ports" ]] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run_evaluation.sh: $(basename "$bin") exited during start-up:" >&2
      cat "$logf" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "run_evaluation.sh: no port file from $(basename "$bin") after 10 s" >&2
  cat "$logf" >&2
  exit 1
}
port_of() {  # port_of PORT_FILE [KEY] -> number
  sed -E "s/.*\"${2:-port}\":([0-9]+).*/\1/" "$1"
}

"$ref_svc" migrate --config "$work/referential.yaml" >"$work/referential-migrate.log" 2>&1 \
  || { cat "$work/referential-migrate.log" >&2; exit 1; }
"$ref_svc" load --config "$work/referential.yaml" "$data" >"$work/referential-load.log" 2>&1 \
  || { cat "$work/referential-load.log" >&2; exit 1; }
# Server logs (one access-log line per call) go to files: the terminal must not be the bottleneck.
serve "$ref_svc" "$work/referential.yaml" "$work/referential.log" "$work/referential.ports" ref_pid
ref_target="127.0.0.1:$(port_of "$work/referential.ports")"
echo "== referential-svc pid $ref_pid on $ref_target"

cat >"$work/evaluation.yaml" <<EOF
database:
  dsn: mysql://root@127.0.0.1:$db_port/evaluation
referential:
  address: $ref_target
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  port_file: $work/evaluation.ports
  drain_timeout: 5s
EOF
"$eval_svc" migrate --config "$work/evaluation.yaml" >"$work/evaluation-migrate.log" 2>&1 \
  || { cat "$work/evaluation-migrate.log" >&2; exit 1; }
serve "$eval_svc" "$work/evaluation.yaml" "$work/evaluation.log" "$work/evaluation.ports" eval_pid
eval_target="127.0.0.1:$(port_of "$work/evaluation.ports")"
echo "== evaluation-svc pid $eval_pid on $eval_target"

echo "== jury_cycle: $candidates candidacies, concurrency $concurrency, $members members per jury"
status=0
out="$("$jury_cycle" --target "$eval_target" --referential_target "$ref_target" --version "$version" \
  --concurrency "$concurrency" --candidates "$candidates" --members "$members")" || status=$?
echo "$out" | grep -v '^{' | sed 's/^/   /'
json="$(echo "$out" | grep '^{' | tail -1 || true)"
if [[ -z "$json" ]]; then
  echo "run_evaluation.sh: jury_cycle failed (exit $status) before its report" >&2
  exit 1
fi

json_field() {  # json_field KEY -> number (top level)
  echo "$json" | sed -E "s/.*\"$1\":([0-9.]+).*/\1/"
}
rpc_field() {  # rpc_field METHOD KEY -> number
  echo "$json" | sed -E "s/.*\"$1\":\{[^}]*\"$2\":([0-9]+).*/\1/"
}

echo
echo "== summary (concurrency $concurrency, $candidates candidacies, $(nproc) CPUs shared by MariaDB, both services and the load generator)"
awk -v cps="$(json_field candidacies_per_s)" -v done="$(json_field completed)" -v total="$candidates" \
    -v secs="$(json_field duration_s)" -v rps="$(json_field rps)" \
    -v c50="$(json_field cycle_p50_us)" -v c99="$(json_field cycle_p99_us)" -v errs="$(json_field errors)" 'BEGIN {
  printf "candidacies  %8.1f /s   (%d of %d full cycles in %.1f s, %.0f calls/s)   errors %d\n", cps, done, total, secs, rps, errs
  printf "cycle        p50 %8.1f ms   p99 %8.1f ms\n", c50 / 1000, c99 / 1000
}'
printf '%-22s %7s %10s %10s\n' rpc calls "p50 ms" "p99 ms"
for m in CreateCandidacy RequestAdmissibility DecideAdmissibility FileDossier CreateJurySession \
         ScheduleCandidacy ConfirmPreparation StartJurySession RecordPassage SubmitScoreSheet \
         OpenDeliberation RecordDecision SignDeliberation RenderSynthesisGrid IssueCertificate; do
  awk -v m="$m" -v n="$(rpc_field "$m" count)" -v p50="$(rpc_field "$m" p50_us)" -v p99="$(rpc_field "$m" p99_us)" \
    'BEGIN { printf "%-22s %7d %10.2f %10.2f\n", m, n, p50 / 1000, p99 / 1000 }'
done
awk -v n="$(rpc_field RenderSynthesisGrid count)" -v p99="$(rpc_field RenderSynthesisGrid p99_us)" \
    -v t="$grid_target_ms" -v bytes="$(json_field grid_bytes)" 'BEGIN {
  ms = p99 / 1000
  if (n == 0) { printf "grid         no grid rendered   target p99 < %d ms per grid   n/a\n", t; exit }
  printf "grid         RenderSynthesisGrid p99 %.2f ms over %d grids (%d-byte PDF)   target p99 < %d ms per grid   %s\n", ms, n, bytes, t, (ms < t ? "OK" : "MISSED")
}'
echo "json $json"

if [[ "$status" != 0 ]]; then
  echo "run_evaluation.sh: calls failed during the benchmark (see the errors above)" >&2
  for f in "$work/evaluation.log" "$work/referential.log"; do  # the temp dir goes on exit
    echo "-- last warning / error / failed-call lines of $(basename "$f"):" >&2
    { grep -E '"level":"(warn|warning|error|fatal)"|"grpc_code":"' "$f" | grep -v '"grpc_code":"OK"' | tail -5 >&2; } || true
  done
  exit 1
fi
