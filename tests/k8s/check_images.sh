#!/usr/bin/env bash
# Checks the images of docker/*.Dockerfile against binaries built on this (Debian 12) machine:
#   tests/k8s/check_images.sh BUILD_DIR          e.g. build (scripts/dev build) or build-k8s
# For each docker/<binary>.Dockerfile whose binary is in BUILD_DIR:
#  1. packages: every library the binary resolves (ldd) belongs (dpkg -S) to a package of the
#     Dockerfile's RUNTIME_PACKAGES, of their dependencies (dpkg's Depends/Pre-Depends, followed
#     recursively), or of the base image's libc6/libgcc-s1/libstdc++6; so does every file of its
#     "# runtime-files:" line. Also: ENTRYPOINT, USER 10001, the two Debian 12 stages.
#  2. start (servers): as uid 65534 (setpriv; root would ignore permissions) in a read-only
#     working directory (chmod 555), with the Kubernetes config of k8s/base/config/<binary>.yaml
#     (listen addresses, *_file paths and *.address overridden with --set to loopback and temp
#     files), SQLite in a writable temp dir (the emptyDir); `migrate` twice (idempotent), `serve`,
#     wait for the port file, gRPC health SERVING on the admin and API ports (tests/k8s/grpc_health.mjs),
#     AdminService/GetBuildInfo (parcoursctl), /metrics, nothing written to the working directory,
#     SIGTERM, exit status 0 within the drain.
# A binary that is not built (the gateway, while it is being written) is skipped with a message.
# Only 127.0.0.1 is ever used. Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -eq 1 ] || { sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD="$(cd "$1" && pwd)"
RUN_UID=65534
BASE_PACKAGES=(libc6 libgcc-s1 libstdc++6)   # in debian:12-slim already
PARCOURSCTL="$(find "$BUILD" -maxdepth 3 -type f -name parcoursctl -perm -u+x 2>/dev/null | head -n1 || true)"

passed=0; failed=0; skipped=0
pass() { printf '  ok    %s\n' "$*"; }
bad() { printf '  FAIL  %s\n' "$*"; CASE_FAILED=1; }

command -v node >/dev/null || { echo "node is needed" >&2; exit 2; }
[ -f "$ROOT/node_modules/@grpc/grpc-js/package.json" ] || { echo "run npm ci first (@grpc/grpc-js)" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then
  AS_USER=(setpriv --reuid="$RUN_UID" --regid="$RUN_UID" --clear-groups)
else
  AS_USER=()   # already unprivileged: permissions apply
  RUN_UID="$(id -u)"
fi

# --- packages ------------------------------------------------------------------------------------

# Depends + Pre-Depends of every installed package, read once.
declare -A DEPENDS=()
while IFS=$'\t' read -r p d; do DEPENDS[$p]="$d"; done \
  < <(dpkg-query -W -f='${Package}\t${Depends}, ${Pre-Depends}\n' 2>/dev/null)

# The packages owning files, one per line as "FILE<TAB>PACKAGE" (usrmerge: a library may be
# registered under /lib or /usr/lib, or only its real path).
packages_of() {
  local f real p
  local -a candidates=()
  declare -A owner=()
  for f in "$@"; do
    real="$(readlink -f "$f")"
    candidates+=("$f" "$real" "/usr${f#/usr}" "${f#/usr}" "/usr${real#/usr}" "${real#/usr}")
  done
  # One dpkg call for all of them ("pkg[:arch][, pkg2]: /path" per file found).
  while IFS= read -r line; do
    p="${line%%: /*}"; p="${p%%,*}"; p="${p%%:*}"
    owner["/${line#*: /}"]="$p"
  done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)
  for f in "$@"; do
    real="$(readlink -f "$f")"
    p=""
    for c in "$f" "$real" "/usr${f#/usr}" "${f#/usr}" "/usr${real#/usr}" "${real#/usr}"; do
      [ -n "${owner[$c]:-}" ] && { p="${owner[$c]}"; break; }
    done
    printf '%s\t%s\n' "$f" "$p"
  done
}

# Every package reachable from the arguments through Depends and Pre-Depends (installed ones:
# the libraries ldd found are installed, so are the packages that matter).
closure() {
  declare -A seen=()
  local queue=("$@") p alt
  while [ ${#queue[@]} -gt 0 ]; do
    p="${queue[0]}"; queue=("${queue[@]:1}")
    [ -n "$p" ] && [ -z "${seen[$p]:-}" ] || continue
    seen[$p]=1
    [ -n "${DEPENDS[$p]:-}" ] || continue
    while IFS= read -r alt; do
      alt="$(sed -e 's/([^)]*)//g' -e 's/:[a-z0-9]*//g' -e 's/ //g' <<<"$alt")"
      [ -n "$alt" ] && queue+=("$alt")
    done < <(tr ',|' '\n\n' <<<"${DEPENDS[$p]}")
  done
  printf '%s\n' "${!seen[@]}"
}

check_packages() {  # $1 dockerfile, $2 binary
  local df="$1" bin="$2" name runtime files closure_list lib pkg missing=0 f
  name="$(basename "$df" .Dockerfile)"
  runtime="$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"$/\1/p' "$df")"
  files="$(sed -n 's/^# runtime-files:\(.*\)$/\1/p' "$df")"
  if [ -z "$runtime" ]; then bad "$name: no ARG RUNTIME_PACKAGES=\"...\" line"; return; fi
  for pkg in $runtime; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || echo "  note  $name: $pkg is not installed here: its dependencies are not followed"
  done
  # shellcheck disable=SC2086
  closure_list="$(closure $runtime "${BASE_PACKAGES[@]}")"
  local libs=0
  while IFS=$'\t' read -r lib pkg; do
    libs=$((libs + 1))
    if [ -z "$pkg" ]; then bad "$name: $lib belongs to no Debian package"; missing=1; continue; fi
    grep -qxF "$pkg" <<<"$closure_list" || { bad "$name: needs $lib from package $pkg, not in RUNTIME_PACKAGES (nor their dependencies)"; missing=1; }
  done < <(packages_of $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u))
  if ldd "$bin" | grep -q "not found"; then bad "$name: ldd: $(ldd "$bin" | grep 'not found' | tr -s ' \t' ' ' | tr '\n' ';')"; missing=1; fi
  for f in $files; do
    if [ ! -e "$f" ]; then bad "$name: runtime file $f is not on this machine (install its package)"; missing=1; continue; fi
    pkg="$(packages_of "$f" | cut -f2)"
    [ -n "$pkg" ] || { bad "$name: runtime file $f belongs to no package"; missing=1; continue; }
    grep -qxF "$pkg" <<<"$closure_list" || { bad "$name: needs $f from package $pkg, not in RUNTIME_PACKAGES"; missing=1; }
  done
  [ $missing = 1 ] || pass "$name: $libs libraries (ldd)$([ -n "${files// /}" ] && echo " and$files") covered by RUNTIME_PACKAGES ($(wc -w <<<"$runtime") packages) + their dependencies"
  grep -q "^ENTRYPOINT \[\"/usr/local/bin/$name\"\]$" "$df" || bad "$name: ENTRYPOINT is not [\"/usr/local/bin/$name\"]"
  grep -q '^USER 10001:10001$' "$df" || bad "$name: no USER 10001:10001"
  grep -q '^FROM debian:12 AS build$' "$df" && grep -q '^FROM debian:12-slim$' "$df" || bad "$name: stages are not debian:12 (build) and debian:12-slim"
  grep -q "ninja -C /build $name " "$df" || bad "$name: the build stage does not build only the $name target"
}

# --- start ---------------------------------------------------------------------------------------

wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
json_field() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); const v=process.argv[1].split(".").reduce((o,k)=>o?.[k], j); process.stdout.write(v===undefined?"":String(v))' "$1"; }

check_start() {  # $1 name, $2 binary
  local name="$1" bin="$2" k8s_config="$ROOT/k8s/base/config/$1.yaml"
  if [ ! -f "$k8s_config" ]; then
    # Not a server (parcoursctl): it runs as uid $RUN_UID in a read-only directory.
    local d; d="$(mktemp -d /tmp/parcours-image-check.XXXXXX)"; chmod 555 "$d"
    if (cd "$d" && env -i PATH=/usr/bin:/bin HOME=/nonexistent "${AS_USER[@]}" "$bin" list) >/dev/null 2>&1; then
      pass "$name: runs as uid $RUN_UID in a read-only working directory (no k8s config: not a server)"
    else bad "$name: '$name list' failed as uid $RUN_UID"; fi
    rmdir "$d"; return
  fi
  local tmp; tmp="$(mktemp -d /tmp/parcours-image-check.XXXXXX)"
  chmod 755 "$tmp"
  mkdir -p "$tmp/workdir" "$tmp/data" "$tmp/secrets"
  chown "$RUN_UID:$RUN_UID" "$tmp/data" 2>/dev/null || true
  chmod 555 "$tmp/workdir"
  # Overrides: loopback ports, every *_file to a temp secret, every *.address to a closed loopback port.
  local overrides
  overrides="$(node --input-type=module -e '
    import fs from "node:fs"; import YAML from "yaml";
    const flat = (n, p, o) => { if (n && typeof n === "object") { for (const [k, v] of Object.entries(n)) flat(v, p ? p + "." + k : k, o); } else if (n != null) o[p] = String(n); return o; };
    const c = flat(YAML.parse(fs.readFileSync(process.argv[1], "utf8")), "", {});
    const [tmp, name] = process.argv.slice(2);
    const out = ["server.listen=127.0.0.1:0", "server.admin_listen=127.0.0.1:0", "server.metrics_listen=127.0.0.1:0",
                 `server.port_file=${tmp}/data/ports.json`, "server.drain_grace=1s", "server.drain_timeout=5s"];
    for (const k of Object.keys(c)) {
      if (k.endsWith("_file") && !k.startsWith("server.")) out.push(`${k}=${tmp}/secrets/${k.replace(/[^a-z0-9]+/g, "-")}`);
      if (k.endsWith(".address")) out.push(`${k}=127.0.0.1:1`);
    }
    console.log(out.join(","));
  ' "$k8s_config" "$tmp" "$name")"
  # Secret files: random keys; the gateway's JWT keys file gets the dev public key.
  local key
  for key in $(tr ',' '\n' <<<"$overrides" | sed -n "s|^[^=]*_file=\($tmp/secrets/.*\)$|\1|p"); do
    case "$key" in
      *jwt*) cp "$ROOT/k8s/components/dev-keys/jwt-dev-public.pem" "$key" ;;
      *) head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$key" ;;
    esac
    chmod 644 "$key"
  done
  cp "$k8s_config" "$tmp/config.yaml"; chmod 644 "$tmp/config.yaml"
  local env=(env -i PATH=/usr/bin:/bin HOME=/nonexistent "PARCOURS_DATABASE_DSN=sqlite:$tmp/data/$name.db")
  local run=("${env[@]}" "${AS_USER[@]}" "$bin")
  local common=(--config "$tmp/config.yaml" "--set=$overrides")

  if [ "$name" != gateway ]; then
    if (cd "$tmp/workdir" && "${run[@]}" migrate "${common[@]}") >"$tmp/migrate.log" 2>&1 \
       && (cd "$tmp/workdir" && "${run[@]}" migrate "${common[@]}") >>"$tmp/migrate.log" 2>&1; then
      pass "$name: migrate (twice) as uid $RUN_UID in a read-only working directory"
    else
      bad "$name: migrate failed: $(tail -3 "$tmp/migrate.log" | tr '\n' ' ')"; rm -rf "$tmp"; return
    fi
  fi
  (cd "$tmp/workdir" && exec "${run[@]}" serve "${common[@]}") >"$tmp/serve.log" 2>&1 &
  local pid=$!
  if ! wait_file "$tmp/data/ports.json"; then
    bad "$name: no port file after 10 s: $(tail -5 "$tmp/serve.log" | tr '\n' ' ')"
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; return
  fi
  local ports api admin metrics
  ports="$(cat "$tmp/data/ports.json")"
  api="$(json_field port <<<"$ports")"; admin="$(json_field admin_port <<<"$ports")"; metrics="$(json_field metrics_port <<<"$ports")"
  local h1 h2
  h1="$(node "$ROOT/tests/k8s/grpc_health.mjs" "127.0.0.1:$admin" 2>&1 || true)"
  h2="$(node "$ROOT/tests/k8s/grpc_health.mjs" "127.0.0.1:$api" 2>&1 || true)"
  if [ "$h1" = SERVING ]; then pass "$name: gRPC health on the admin port $admin: SERVING"; else bad "$name: admin health: $h1"; fi
  if [ "$h2" = SERVING ]; then pass "$name: gRPC health on the API port $api: SERVING"
  elif grep -q "tls\|TLS\|SSL" <<<"$h2"; then echo "  note  $name: API port is TLS ($h2): health checked on the admin port only"
  else bad "$name: API health: $h2"; fi
  if [ -n "$PARCOURSCTL" ] && [ "$name" != gateway ]; then
    local info expected actual
    if info="$("$PARCOURSCTL" --addr "127.0.0.1:$admin" --emit-defaults call parcours.admin.v1.AdminService/GetBuildInfo '{}' 2>&1)"; then
      expected="$(json_field expectedSchemaVersion <<<"$info")"; actual="$(json_field databaseSchemaVersion <<<"$info")"
      if [ -n "$expected" ] && [ "$expected" = "$actual" ] && [ "$expected" != 0 ]; then
        pass "$name: GetBuildInfo: schema $actual of $expected ($(json_field databaseDialect <<<"$info"))"
      else bad "$name: GetBuildInfo: $(tr -d '\n' <<<"$info")"; fi
    else bad "$name: GetBuildInfo failed: $info"; fi
  fi
  local scrape
  scrape="$(node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t)).catch(e=>{console.error(e.message);process.exit(1)})' "http://127.0.0.1:$metrics/metrics" 2>&1 || true)"
  if grep -q '^grpc_server_handled_total' <<<"$scrape"; then pass "$name: /metrics on $metrics exports grpc_server_handled_total"
  else bad "$name: /metrics: $(head -c 200 <<<"$scrape")"; fi
  if [ -n "$(ls -A "$tmp/workdir")" ]; then bad "$name: wrote into its working directory: $(ls -A "$tmp/workdir")"; fi
  local start rc=0
  start=$(date +%s)
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  if [ "$rc" = 0 ]; then pass "$name: SIGTERM: drained and exited 0 in $(( $(date +%s) - start )) s"
  else bad "$name: SIGTERM: exit status $rc: $(tail -3 "$tmp/serve.log" | tr '\n' ' ')"; fi
  rm -rf "$tmp"
}

# --- main ----------------------------------------------------------------------------------------

for df in "${PARCOURS_DOCKERFILES_DIR:-$ROOT/docker}"/*.Dockerfile; do
  name="$(basename "$df" .Dockerfile)"
  echo "== $name ($(realpath --relative-to="$ROOT" "$df"))"
  bin="$(find "$BUILD" -maxdepth 3 -type f -name "$name" -perm -u+x 2>/dev/null | head -n1 || true)"
  if [ -z "$bin" ]; then
    echo "  SKIP  $name: no binary in $BUILD (target $name not built or not in the tree yet)"
    skipped=$((skipped + 1)); continue
  fi
  CASE_FAILED=0
  check_packages "$df" "$bin"
  check_start "$name" "$bin"
  if [ $CASE_FAILED = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "check_images: ${passed} passed, ${failed} failed, ${skipped} skipped"
[ $failed = 0 ]
