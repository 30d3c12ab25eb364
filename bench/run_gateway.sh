#!/usr/bin/env bash
# Gateway benchmark (see bench/README.md, "Gateway").
#
#   bench/run_gateway.sh [BUILD_DIR]        (default: build)
#
# Environment: BENCH_INFLIGHT (64), BENCH_DURATION (10s), BENCH_WARMUP (2s), BENCH_ROUNDS (3),
#              BENCH_VERSION (certifications/CQP-TMSA/versions/1), BENCH_CONNECTIONS (the
#              gateway's backends.connections; its default when unset), BENCH_PARTS (set: also
#              run the journey's backend reads directly, printed as a diagnostic).
#
# Starts, in a temp dir on loopback, referential-svc (seed CQP loaded), evaluation-svc and cep-svc
# on SQLite and the gateway (plaintext API, JWT dev keys from scripts/dev-keys.sh, rate limit
# off), every one with server.bench_echo on; mints an operator token with `parcoursctl token`;
# runs gateway_bench (set-up of a case with a VAE outcome linked to a candidacy, then the runs);
# then sums the peak RSS (VmHWM) of the four servers. Prints a summary (figure, target, OK /
# MISSED; not enforced) and the command; exits non-zero if a step or a call fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$repo/$build"
ref_svc="$build/referential-svc/referential-svc"
eval_svc="$build/evaluation-svc/evaluation-svc"
cep_svc="$build/cep-svc/cep-svc"
gateway="$build/gateway/gateway"
ctl="$build/cli/parcoursctl"
bench="$build/bench/gateway_bench"
data="$repo/referential-svc/data/cqp-technicien-maintenance-alimentaire.json"

inflight="${BENCH_INFLIGHT:-64}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
rounds="${BENCH_ROUNDS:-3}"
version="${BENCH_VERSION:-certifications/CQP-TMSA/versions/1}"
operator_id="op-bench"
rss_target_mb=256

for bin in "$ref_svc" "$eval_svc" "$cep_svc" "$gateway" "$ctl" "$bench"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_gateway.sh: $bin not found; build it:" >&2
    echo "  ninja -C $build referential-svc evaluation-svc cep-svc gateway parcoursctl gateway_bench" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/parcours-gwbench.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# config NAME EXTRA_YAML: writes $work/NAME.yaml (every port 127.0.0.1:0, bench_echo on).
config() {
  local name="$1" extra="$2"
  cat >"$work/$name.yaml" <<EOF
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  metrics_listen: 127.0.0.1:0
  port_file: $work/$name.ports
  drain_timeout: 5s
  bench_echo: true
$extra
EOF
}

# serve BIN NAME: starts `BIN serve` in the background (log in the temp dir), waits for its port
# file; sets started_pid and started_target.
serve() {
  local bin="$1" name="$2"
  "$bin" serve --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  for _ in $(seq 150); do
    [[ -s "$work/$name.ports" ]] && break
    if ! kill -0 "$started_pid" 2>/dev/null; then
      echo "run_gateway.sh: $name exited during start-up:" >&2
      tail -20 "$work/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [[ -s "$work/$name.ports" ]] || { echo "run_gateway.sh: no port file for $name" >&2; exit 1; }
  started_target="127.0.0.1:$(sed -E 's/.*"port":([0-9]+).*/\1/' "$work/$name.ports")"
  echo "== $name pid $started_pid on $started_target"
}

migrate() {  # migrate BIN NAME
  "$1" migrate --config "$work/$2.yaml" >"$work/$2-migrate.log" 2>&1 || { cat "$work/$2-migrate.log" >&2; exit 1; }
}

echo "== set-up in $work"
"$repo/scripts/dev-keys.sh" "$work/keys" >"$work/dev-keys.log" 2>&1 || { cat "$work/dev-keys.log" >&2; exit 1; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/pseudonym.key"

config referential "database:
  dsn: sqlite:$work/referential.db"
migrate "$ref_svc" referential
"$ref_svc" load --config "$work/referential.yaml" "$data" >"$work/load.log" 2>&1 || { cat "$work/load.log" >&2; exit 1; }
serve "$ref_svc" referential
ref_pid=$started_pid ref_target=$started_target

config evaluation "database:
  dsn: sqlite:$work/evaluation.db
referential:
  address: $ref_target"
migrate "$eval_svc" evaluation
serve "$eval_svc" evaluation
eval_pid=$started_pid eval_target=$started_target

config cep "database:
  dsn: sqlite:$work/cep.db
pseudonym_key_file: $work/pseudonym.key"
migrate "$cep_svc" cep
serve "$cep_svc" cep
cep_pid=$started_pid cep_target=$started_target

config gateway "auth:
  jwt_keys_file: $work/keys/jwt-dev.jwks.json
  jwt_issuer: parcours-dev
  jwt_audience: parcours-gateway
backends:${BENCH_CONNECTIONS:+
  connections: $BENCH_CONNECTIONS}
  referential:
    address: $ref_target
  evaluation:
    address: $eval_target
  cep:
    address: $cep_target
rate_limit:
  rate: 0"
serve "$gateway" gateway
gw_pid=$started_pid gw_target=$started_target

token="$("$ctl" token --key "$work/keys/jwt-dev.key" --kid jwt-dev --principal "operator:$operator_id" \
  --issuer parcours-dev --audience parcours-gateway --ttl 2h)"

cmd=("$bench" --gateway "$gw_target" --referential "$ref_target" --cep "$cep_target" --evaluation "$eval_target"
     --token "$token" --operator_id "$operator_id" --version "$version" --inflight "$inflight"
     --duration "$duration" --warmup "$warmup" --rounds "$rounds"
     --watch "gateway=$gw_pid,referential=$ref_pid,cep=$cep_pid,evaluation=$eval_pid")
[[ -n "${BENCH_PARTS:-}" ]] && cmd+=(--parts)
echo "== gateway_bench: $inflight in flight, $duration per run after $warmup warm-up, $rounds rounds"
status=0
out="$("${cmd[@]}")" || status=$?
echo "$out" | grep -v '^row \|^{\|^$' | sed 's/^/   /'

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_total=0 rss_total=0 per=""
for p in "ref:$ref_pid" "eval:$eval_pid" "cep:$cep_pid" "gw:$gw_pid"; do
  name="${p%%:*}" pid="${p#*:}"
  h="$(hwm_kb "$pid")" r="$(rss_kb "$pid")"
  hwm_total=$((hwm_total + h)) rss_total=$((rss_total + r))
  per+="$name $((h / 1024))"
  [[ "$name" = gw ]] || per+=", "
done

echo
echo "== summary ($(nproc) CPUs shared by the four servers and the client)"
printf '    %-52s %-26s %-14s %s\n' "figure" "measured" "target" "result"
echo "$out" | grep '^row ' | sed 's/^row /    /'
awk -v h="$hwm_total" -v r="$rss_total" -v t="$rss_target_mb" -v per="$per" 'BEGIN {
  mb = h / 1024
  printf "    %-52s %-26s %-14s %s\n", "3  sum of VmHWM of the 4 servers after the runs", sprintf("%.1f MB", mb), "<= " t " MB", (mb <= t ? "OK" : "MISSED")
  printf "       (VmHWM MB: %s; VmRSS now %.1f MB in all)\n", per, r / 1024
}'
echo "$out" | grep '^{' | sed 's/^/json /'
echo "command: BENCH_INFLIGHT=$inflight BENCH_DURATION=$duration BENCH_WARMUP=$warmup BENCH_ROUNDS=$rounds bench/run_gateway.sh $build"

if [[ $status -ne 0 ]]; then
  echo "run_gateway.sh: gateway_bench failed (status $status); last server log lines:" >&2
  for n in referential evaluation cep gateway; do
    echo "-- $n" >&2
    grep -v '"msg":"rpc"\|"msg":"audit"' "$work/$n.log" | tail -5 >&2 || true
  done
  exit 1
fi
