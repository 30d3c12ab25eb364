#!/usr/bin/env bash
# promtool checks of the monitoring component (k8s/components/monitoring):
# `promtool check rules` on the alert rules and on the Grafana dashboard's queries (as recording
# rules, Grafana variables replaced), then `promtool test rules tests/k8s/alerts_test.yaml` (each
# alert fires on synthetic series of the services' metrics, and the exclusions hold).
#   tests/k8s/check_alerts.sh            uses promtool from PATH or $PROMTOOL
# promtool is in Debian's `prometheus` package; without installing the server:
#   (cd /tmp && apt-get download prometheus && dpkg-deb -x prometheus_*.deb prometheus-deb)
#   PROMTOOL=/tmp/prometheus-deb/usr/bin/promtool tests/k8s/check_alerts.sh
# Without promtool, prints SKIP and exits 0.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PROMTOOL="${PROMTOOL:-$(command -v promtool || true)}"
if [ -z "$PROMTOOL" ] || [ ! -x "$PROMTOOL" ]; then
  echo "check_alerts: SKIP (no promtool; see the header of $0)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node --input-type=module -e '
  import fs from "node:fs"; import YAML from "yaml";
  const rule = YAML.parse(fs.readFileSync(process.argv[1], "utf8"));
  fs.writeFileSync(process.argv[2], YAML.stringify(rule.spec));
  const dash = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
  const rules = [];
  const walk = (n) => { if (Array.isArray(n)) return n.forEach(walk); if (!n || typeof n !== "object") return;
    if (typeof n.expr === "string") rules.push({ record: `dashboard:query_${rules.length}`,
      expr: n.expr.replaceAll("$__rate_interval", "5m").replaceAll("$service", ".*") });
    Object.values(n).forEach(walk); };
  walk(dash.panels);
  fs.writeFileSync(process.argv[4], YAML.stringify({ groups: [{ name: "dashboard", rules }] }));
' "$ROOT/k8s/components/monitoring/prometheusrule.yaml" "$tmp/rules.yaml" \
  "$ROOT/k8s/components/monitoring/dashboard-parcours.json" "$tmp/dashboard-queries.yaml"
cp "$ROOT/tests/k8s/alerts_test.yaml" "$tmp/"
cd "$tmp"
"$PROMTOOL" check rules rules.yaml dashboard-queries.yaml
"$PROMTOOL" test rules alerts_test.yaml
echo "check_alerts: 1 passed, 0 failed"
