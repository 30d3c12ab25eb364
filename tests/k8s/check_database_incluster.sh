#!/usr/bin/env bash
# Runs components/database-incluster's pieces for real, without a cluster:
#   tests/k8s/check_database_incluster.sh BUILD_DIR
# starts a private MariaDB on 127.0.0.1 (temporary data directory, free port, as scripts/dev test
# does), sources the component's init script (initdb/01-parcours.sh) the way the MariaDB image's
# entrypoint does, with the passwords of the rendered Secret mariadb-credentials; then, for each
# backend, takes the DSN of its rendered Secret <svc>-db (host rewritten to the private server),
# runs `migrate` as the service's own user, `serve` until gRPC health is SERVING and
# AdminService/GetBuildInfo reports the mysql dialect at the expected schema, and checks that the
# user cannot read another service's database.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -eq 1 ] || { sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD="$(cd "$1" && pwd)"
PARCOURSCTL="$(find "$BUILD" -maxdepth 3 -type f -name parcoursctl -perm -u+x | head -n1 || true)"
for tool in mariadb-install-db mariadb kubectl node; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "check_database_incluster: SKIP (no $tool)"; exit 0; }
done
passed=0; failed=0
ok() { printf '  ok    %s\n' "$*"; passed=$((passed + 1)); }
bad() { printf '  FAIL  %s\n' "$*"; failed=$((failed + 1)); }

DIR="$(mktemp -d /tmp/parcours-dbcheck.XXXXXX)"
DB_PID=""
cleanup() {
  [ -n "$DB_PID" ] && kill -CONT "$DB_PID" 2>/dev/null || true; [ -n "$DB_PID" ] && kill -TERM "$DB_PID" 2>/dev/null && wait "$DB_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

# The rendered Secrets (the dev combination of components).
kubectl kustomize "$ROOT/k8s/tests/incluster-db" > "$DIR/render.yaml"
secret() {  # $1 Secret name (before the hash suffix), $2 key
  node --input-type=module -e '
    import fs from "node:fs"; import YAML from "yaml";
    const [file, name, key] = process.argv.slice(1);
    const s = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS())
      .find((o) => o && o.kind === "Secret" && o.metadata.name.replace(/-[a-z0-9]{10}$/, "") === name);
    if (!s || s.data?.[key] === undefined) { console.error(`no Secret ${name} key ${key}`); process.exit(1); }
    process.stdout.write(Buffer.from(s.data[key].replace(/\s/g, ""), "base64").toString("utf8"));
  ' "$DIR/render.yaml" "$1" "$2"
}

# A private MariaDB on loopback.
source "$ROOT/scripts/free-port.sh"
port="$(free_port)"
mariadb-install-db --no-defaults --datadir="$DIR/data" --user="$(id -un)" \
  --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1
PATH="$PATH:/usr/sbin" mariadbd --no-defaults --datadir="$DIR/data" --socket="$DIR/sock" --port="$port" \
  --bind-address=127.0.0.1 --user="$(id -un)" --skip-log-bin --character-set-server=utf8mb4 \
  --collation-server=utf8mb4_bin --skip-name-resolve >"$DIR/server.log" 2>&1 &
DB_PID=$!
for _ in $(seq 300); do
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$DB_PID" 2>/dev/null || { tail -20 "$DIR/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "== MariaDB on 127.0.0.1:$port"

# The init script, sourced as the image's entrypoint does (docker_process_sql runs SQL as root).
docker_process_sql() { mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" "$@"; }
export PARCOURS_REFERENTIAL_PASSWORD PARCOURS_EVALUATION_PASSWORD PARCOURS_CEP_PASSWORD
PARCOURS_REFERENTIAL_PASSWORD="$(secret mariadb-credentials referential-password)"
PARCOURS_EVALUATION_PASSWORD="$(secret mariadb-credentials evaluation-password)"
PARCOURS_CEP_PASSWORD="$(secret mariadb-credentials cep-password)"
# shellcheck source=/dev/null
if ( source "$ROOT/k8s/components/database-incluster/initdb/01-parcours.sh" ) >"$DIR/initdb.log" 2>&1; then
  ok "initdb/01-parcours.sh: databases and users created"
else
  bad "initdb/01-parcours.sh: $(tail -3 "$DIR/initdb.log" | tr '\n' ' ')"
fi

wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
for svc in referential-svc evaluation-svc cep-svc; do
  db="${svc%-svc}"
  echo "== $svc"
  bin="$(find "$BUILD" -maxdepth 3 -type f -name "$svc" -perm -u+x | head -n1 || true)"
  [ -n "$bin" ] || { echo "  SKIP  $svc: not built in $BUILD"; continue; }
  dsn="$(secret "$svc-db" dsn)"
  case "$dsn" in
    "mysql://$db:"*"@mariadb.parcours.svc.cluster.local:3306/$db") ;;
    *) bad "$svc: DSN of Secret $svc-db is not mysql://$db:...@mariadb.parcours.svc.cluster.local:3306/$db"; continue ;;
  esac
  local_dsn="${dsn/mariadb.parcours.svc.cluster.local:3306/127.0.0.1:$port}"
  cfg="$DIR/$svc.yaml"
  printf 'server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  metrics_listen: ""\n  port_file: %s\n' "$DIR/$svc.ports" > "$cfg"
  if PARCOURS_DATABASE_DSN="$local_dsn" "$bin" migrate --config "$cfg" >"$DIR/$svc.migrate.log" 2>&1; then
    ok "$svc: migrate as user $db with the rendered DSN"
  else
    bad "$svc: migrate: $(tail -2 "$DIR/$svc.migrate.log" | tr '\n' ' ')"; continue
  fi
  PARCOURS_DATABASE_DSN="$local_dsn" "$bin" serve --config "$cfg" >"$DIR/$svc.serve.log" 2>&1 &
  pid=$!
  if wait_file "$DIR/$svc.ports"; then
    admin="$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1])).admin_port))' "$DIR/$svc.ports")"
    health="$(node "$ROOT/tests/k8s/grpc_health.mjs" "127.0.0.1:$admin" 2>&1 || true)"
    [ "$health" = SERVING ] && ok "$svc: serving on MariaDB (health SERVING)" || bad "$svc: health $health"
    ready="$(node "$ROOT/tests/k8s/grpc_health.mjs" "127.0.0.1:$admin" parcours.readiness 2>&1 || true)"
    [ "$ready" = SERVING ] && ok "$svc: ready (parcours.readiness SERVING: the database answers)" || bad "$svc: readiness $ready"
    if [ -n "$PARCOURSCTL" ]; then
      info="$("$PARCOURSCTL" --addr "127.0.0.1:$admin" call parcours.admin.v1.AdminService/GetBuildInfo '{}' 2>&1 || true)"
      if grep -q '"databaseDialect": "mysql"' <<<"$info" \
         && [ "$(grep -o '"expectedSchemaVersion": [0-9]*' <<<"$info" | grep -o '[0-9]*$')" = "$(grep -o '"databaseSchemaVersion": [0-9]*' <<<"$info" | grep -o '[0-9]*$')" ]; then
        ok "$svc: GetBuildInfo: mysql, schema up to date"
      else bad "$svc: GetBuildInfo: $(tr -d '\n' <<<"$info")"; fi
    fi
    if [ "$svc" = cep-svc ]; then
      # The database stops answering (SIGSTOP: no reset, as a host gone silent): readiness goes
      # NOT_SERVING within a check period plus its timeout (5 s + 2 s), liveness ("") stays
      # SERVING (no restart), and readiness comes back once the database answers again.
      probe() { node "$ROOT/tests/k8s/grpc_health.mjs" "127.0.0.1:$admin" "$@" --timeout-ms 1000 2>&1 || true; }
      kill -STOP "$DB_PID"
      away=""; for _ in $(seq 60); do away="$(probe parcours.readiness)"; [ "$away" = NOT_SERVING ] && break; sleep 0.2; done
      live="$(probe)"
      kill -CONT "$DB_PID"
      back=""; for _ in $(seq 60); do back="$(probe parcours.readiness)"; [ "$back" = SERVING ] && break; sleep 0.2; done
      if [ "$away" = NOT_SERVING ] && [ "$live" = SERVING ] && [ "$back" = SERVING ]; then
        ok "$svc: database silent -> not ready, still live; ready again once it answers"
      else bad "$svc: database silent: readiness $away, liveness $live, then readiness $back"; fi
    fi
  else
    bad "$svc: did not start: $(tail -3 "$DIR/$svc.serve.log" | tr '\n' ' ')"
  fi
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  pass_var="PARCOURS_${db^^}_PASSWORD"
  other=referential; [ "$db" = referential ] && other=cep
  denied="$(mariadb --no-defaults -u"$db" -p"${!pass_var}" -h127.0.0.1 -P"$port" -e "USE \`$other\`" 2>&1 || true)"
  if grep -q "Access denied" <<<"$denied"; then ok "$svc: user $db is denied database $other"
  else bad "$svc: user $db can use database $other ($denied)"; fi
done
echo "check_database_incluster: $passed passed, $failed failed"
[ "$failed" = 0 ]
