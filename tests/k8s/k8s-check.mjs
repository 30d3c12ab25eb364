// scripts/k8s-check's engine: renders kustomizations with `kubectl kustomize` and checks every
// object against the Kubernetes schemas (npm kubernetes-models, made strict: unknown fields are
// errors) and the project's rules. See scripts/k8s-check for usage.
//
// Rules (ids as printed):
//   render         kubectl kustomize succeeds and yields objects
//   schema         the object validates against its kubernetes-models schema (built-in kinds,
//                  cert-manager, Prometheus Operator)
//   unknown-field  no field the schema does not define (the packaged validators accept them)
//   crd-minimal    kinds without a packaged schema (mariadb-operator): apiVersion group/version,
//                  kind, metadata.name (counted as "minimal", not schema-validated)
//   namespace      every namespaced object is in namespace parcours
//   resources      every container and initContainer has cpu and memory requests and limits
//   security       runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation false,
//                  capabilities drop ALL, seccomp RuntimeDefault; uid 10001 for Parcours images;
//                  an emptyDir on /tmp for Parcours containers
//   service-account  pods name a ServiceAccount of the render; tokens not mounted
//   probes         Deployments: startup, readiness and liveness probes; Parcours containers use
//                  native gRPC probes on the admin port of their config; readiness on service
//                  parcours.readiness (the database), liveness and start-up on "" (the process)
//   config         Parcours containers: --config is mounted from a ConfigMap of the render, the
//                  pod annotation parcours.fr/config names it (the config checksum), the
//                  Prometheus annotations match server.metrics_listen, every *_file key names a
//                  file inside a mounted volume (and a key of its Secret/ConfigMap)
//   drain          terminationGracePeriodSeconds > server.drain_grace + server.drain_timeout;
//                  server.max_connection_age set
//   topology       Deployments spread their pods (topologySpreadConstraints)
//   grpc-port-name container and Service ports carrying gRPC (server.listen, server.admin_listen)
//                  are named grpc*; Service selectors and targetPorts resolve; *-headless Services
//                  have clusterIP None
//   refs           every Secret/ConfigMap referenced by env, envFrom and volumes exists in the
//                  render (or is produced by a Certificate / mariadb-operator Connection, or is
//                  declared on the Namespace with the annotation external-secret.parcours.fr/<name>),
//                  with the referenced keys
//   netpol-ports   named ports of NetworkPolicies exist on some container of the render
//   scaling        HPAs target an existing Deployment; PDBs select pods
//   metrics        PrometheusRule and Grafana dashboard expressions only use metrics the code
//                  exports (platform/*.cc) or kube-state-metrics / cAdvisor / up
//   alerts         every alert has a severity and a runbook_url anchor present in docs/operations.md
//   prod           (kustomizations marked "# k8s-check: prod") each Deployment has a PDB, an HPA,
//                  a NetworkPolicy selecting it and a default-deny policy; no dev-only Secret;
//                  image tags set and not "latest"
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const NAMESPACE = "parcours";
const PARCOURS_UID = 10001;
const EXTERNAL_SECRET_PREFIX = "external-secret.parcours.fr/";
const DEV_ONLY_LABEL = "parcours.fr/dev-only";

// ---------------------------------------------------------------------------------------------
// Schemas: kubernetes-models classes, by apiVersion.

const MODEL_PACKAGES = [
  { match: (group) => group === "" || !group.includes(".") || group.endsWith(".k8s.io"), pkg: "kubernetes-models" },
  { match: (group) => group === "monitoring.coreos.com", pkg: "@kubernetes-models/prometheus-operator" },
  { match: (group) => group.endsWith("cert-manager.io"), pkg: "@kubernetes-models/cert-manager" },
];
const modelCache = new Map();

async function loadModel(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  let model = null;
  const entry = MODEL_PACKAGES.find((p) => p.match(group));
  if (entry) {
    const spec = `${entry.pkg}/${group === "" ? "" : group + "/"}${version}/${kind}`;
    try {
      const mod = await import(spec);
      model = mod[kind] ?? null;
    } catch (e) {
      if (e.code !== "ERR_MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw e;
    }
  }
  modelCache.set(key, model);
  return model;
}

// Runs the model's compiled validator on a recording proxy of the object: the validators read
// every property their schema defines and enumerate the keys of maps, so a key of a (non-map)
// object that was never read is a field the schema does not know.
function validateStrict(Model, obj) {
  const records = [];
  const proxies = new WeakMap(); // one proxy (and record) per object, however often it is read
  const wrap = (value, where) => {
    if (value === null || typeof value !== "object") return value;
    if (proxies.has(value)) return proxies.get(value);
    const rec = { value, where, read: new Set(), enumerated: false };
    records.push(rec);
    const proxy = new Proxy(value, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof prop !== "string") return v;
        rec.read.add(prop);
        return Object.prototype.hasOwnProperty.call(target, prop) ? wrap(v, `${where}/${prop}`) : v;
      },
      has(target, prop) {
        if (typeof prop === "string") rec.read.add(prop);
        return Reflect.has(target, prop);
      },
      ownKeys(target) {
        rec.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  let error = null;
  try {
    Model.prototype.validate.call(wrap(obj, ""));
  } catch (e) {
    error = e.message;
  }
  const unknown = [];
  if (!error) {
    for (const rec of records) {
      if (Array.isArray(rec.value) || rec.enumerated) continue;
      for (const k of Object.keys(rec.value)) if (!rec.read.has(k)) unknown.push(`${rec.where}/${k}`);
    }
  }
  return { error, unknown };
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const ref = (o) => `${o.kind}/${o.metadata?.name ?? "?"}`;

function selectorMatches(selector, labels) {
  if (!isObj(selector)) return false;
  const ml = selector.matchLabels ?? {};
  const me = selector.matchExpressions ?? [];
  if (Object.keys(ml).length === 0 && me.length === 0) return true;
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of me) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case "In": if (!has || !e.values.includes(labels[e.key])) return false; break;
      case "NotIn": if (has && e.values.includes(labels[e.key])) return false; break;
      case "Exists": if (!has) return false; break;
      case "DoesNotExist": if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

function mapSelectorMatches(selector, labels) {
  if (!isObj(selector) || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

// absl durations as the services parse them: "5s", "500ms", "1h30m", "inf".
function parseDuration(text) {
  if (text === undefined || text === null) return null;
  const s = String(text).trim();
  if (s === "inf") return Infinity;
  const re = /(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g;
  const unit = { ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0, consumed = 0, m;
  while ((m = re.exec(s)) !== null) {
    if (m.index !== consumed) return null;
    total += parseFloat(m[1]) * unit[m[2]];
    consumed = m.index + m[0].length;
  }
  return consumed === s.length && consumed > 0 ? total : null;
}

// Flattens the service config (platform/config.cc): nested maps become dotted keys.
function flattenConfig(node, prefix, out) {
  if (isObj(node)) {
    for (const [k, v] of Object.entries(node)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (node !== null && node !== undefined) {
    out[prefix] = String(node);
  }
  return out;
}

const envName = (key) => "PARCOURS_" + key.toUpperCase().replace(/\./g, "_");
const portOf = (listen) => {
  const m = /:(\d+)$/.exec(listen ?? "");
  return m ? Number(m[1]) : null;
};

function podTemplates(objects) {
  const out = [];
  for (const o of objects) {
    let tpl = null;
    if (["Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"].includes(o.kind)) tpl = o.spec?.template;
    else if (o.kind === "CronJob") tpl = o.spec?.jobTemplate?.spec?.template;
    if (tpl) out.push({ owner: o, template: tpl, labels: tpl.metadata?.labels ?? {}, spec: tpl.spec ?? {} });
  }
  return out;
}

const allContainers = (spec) => [
  ...(spec.initContainers ?? []).map((c) => ({ c, init: true })),
  ...(spec.containers ?? []).map((c) => ({ c, init: false })),
];

const isParcoursImage = (image) => /(^|\/)parcours\/[^/]+$/.test((image ?? "").split("@")[0].replace(/:[^/:]*$/, ""));

// The metric names the code registers with prometheus-cpp (BuildCounter/Gauge/Histogram().Name("...")).
function exportedMetrics() {
  const names = new Set();
  const dirs = ["platform", "referential-svc/src", "evaluation-svc/src", "cep-svc/src", "gateway/src", "gateway/auth"];
  for (const d of dirs) {
    const abs = path.join(ROOT, d);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs)) {
      if (!f.endsWith(".cc")) continue;
      const text = fs.readFileSync(path.join(abs, f), "utf8");
      const re = /Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\("([a-zA-Z_:][a-zA-Z0-9_:]*)"\)/g;
      let m;
      while ((m = re.exec(text)) !== null) {
        const [, type, name] = m;
        names.add(name);
        if (type === "Histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
        if (type === "Summary") for (const s of ["_sum", "_count"]) names.add(name + s);
      }
    }
  }
  return names;
}
const EXTERNAL_METRIC = /^(kube_|container_|up$)/;

// Metric names in a PromQL expression (enough for the expressions of this repository).
function promqlMetricNames(expr) {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{[^}]*\}/g, " ");
  s = s.replace(/\[[^\]]*\]/g, " ");
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const keywords = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "le"]);
  const names = new Set();
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    const [, id, call] = m;
    const before = s[m.index - 1];
    if (call || keywords.has(id) || (before && /[0-9.$]/.test(before))) continue;
    names.add(id);
  }
  return names;
}

function markdownAnchors(file) {
  const anchors = new Set();
  if (!fs.existsSync(file)) return anchors;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const slug = m[1].trim().toLowerCase().replace(/[`*_~]/g, "").replace(/[^\p{L}\p{N} -]/gu, "").replace(/ /g, "-");
    anchors.add(slug);
  }
  return anchors;
}

// ---------------------------------------------------------------------------------------------
// Checks of one render.

async function checkRender(objects, { prod }) {
  const failures = [];
  const fail = (rule, where, message) => failures.push({ rule, where, message });
  const stats = { objects: objects.length, schema: 0, minimal: 0 };

  // Schemas.
  for (const o of objects) {
    if (!isObj(o) || typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
      fail("schema", "?", "an object without apiVersion or kind");
      continue;
    }
    const Model = await loadModel(o.apiVersion, o.kind);
    if (Model) {
      stats.schema++;
      // kustomize wraps the base64 of Secret data at 70 columns; the API server's decoder
      // ignores the newlines, so the schema's "byte" format is checked without them.
      const subject = o.kind === "Secret" && o.apiVersion === "v1" && isObj(o.data)
        ? { ...o, data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v])) }
        : o;
      const { error, unknown } = validateStrict(Model, subject);
      if (error) fail("schema", ref(o), error);
      for (const u of unknown) fail("unknown-field", ref(o), `unknown field ${u}`);
    } else {
      stats.minimal++;
      if (!/^[a-z0-9.-]+\.[a-z]+\/v[0-9a-z]+$/.test(o.apiVersion)) fail("crd-minimal", ref(o), `apiVersion ${o.apiVersion} is not group/version`);
      if (!/^[A-Z][A-Za-z0-9]*$/.test(o.kind)) fail("crd-minimal", ref(o), `kind ${o.kind} is not a kind`);
      if (!isObj(o.metadata) || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.metadata.name ?? "")) {
        fail("crd-minimal", ref(o), "metadata.name missing or not a DNS subdomain");
      }
    }
  }
  const valid = objects.filter((o) => isObj(o) && isObj(o.metadata) && typeof o.kind === "string");
  const byKind = (kind) => valid.filter((o) => o.kind === kind);
  const find = (kind, name) => valid.find((o) => o.kind === kind && o.metadata.name === name);

  // Namespace.
  const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PriorityClass", "StorageClass", "ClusterIssuer", "PersistentVolume"]);
  for (const o of valid) {
    if (clusterScoped.has(o.kind)) continue;
    if (o.metadata.namespace !== NAMESPACE) fail("namespace", ref(o), `namespace is ${o.metadata.namespace ?? "unset"}, not ${NAMESPACE}`);
  }

  // What Secrets exist or are promised.
  const secrets = new Map(); // name -> Set(keys) | null (keys unknown)
  for (const s of byKind("Secret")) secrets.set(s.metadata.name, new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]));
  for (const c of valid.filter((o) => o.kind === "Certificate" && o.apiVersion.startsWith("cert-manager.io/"))) {
    if (c.spec?.secretName) secrets.set(c.spec.secretName, new Set(["tls.crt", "tls.key", "ca.crt"]));
  }
  for (const c of valid.filter((o) => o.kind === "Connection" && o.apiVersion.startsWith("k8s.mariadb.com/"))) {
    if (c.spec?.secretName) secrets.set(c.spec.secretName, new Set([c.spec?.secretTemplate?.key ?? "dsn"]));
  }
  for (const ns of byKind("Namespace")) {
    for (const k of Object.keys(ns.metadata.annotations ?? {})) {
      if (k.startsWith(EXTERNAL_SECRET_PREFIX)) {
        const name = k.slice(EXTERNAL_SECRET_PREFIX.length);
        if (!secrets.has(name)) secrets.set(name, null);
      }
    }
  }
  const configMaps = new Map(byKind("ConfigMap").map((c) => [c.metadata.name, new Set([...Object.keys(c.data ?? {}), ...Object.keys(c.binaryData ?? {})])]));
  const checkRef = (where, kind, name, key) => {
    const table = kind === "Secret" ? secrets : configMaps;
    if (!name) return fail("refs", where, `${kind} reference without a name`);
    if (!table.has(name)) return fail("refs", where, `${kind} ${name} is not in the render` + (kind === "Secret" ? ` (nor produced, nor declared with ${EXTERNAL_SECRET_PREFIX}${name})` : ""));
    const keys = table.get(name);
    if (key !== undefined && keys !== null && !keys.has(key)) fail("refs", where, `${kind} ${name} has no key ${key}`);
  };

  const pods = podTemplates(valid);
  const exported = exportedMetrics();

  for (const { owner, template, labels, spec } of pods) {
    const where = ref(owner);
    const isDeployment = owner.kind === "Deployment";
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const t of owner.spec?.volumeClaimTemplates ?? []) volumes.set(t.metadata?.name, { persistentVolumeClaim: {} });

    // refs (env, envFrom, volumes).
    for (const { c } of allContainers(spec)) {
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef, m = e.valueFrom?.configMapKeyRef;
        if (s && !s.optional) checkRef(`${where} ${c.name} env ${e.name}`, "Secret", s.name, s.key);
        if (m && !m.optional) checkRef(`${where} ${c.name} env ${e.name}`, "ConfigMap", m.name, m.key);
      }
      for (const e of c.envFrom ?? []) {
        if (e.secretRef && !e.secretRef.optional) checkRef(`${where} ${c.name} envFrom`, "Secret", e.secretRef.name);
        if (e.configMapRef && !e.configMapRef.optional) checkRef(`${where} ${c.name} envFrom`, "ConfigMap", e.configMapRef.name);
      }
      for (const vm of c.volumeMounts ?? []) {
        if (!volumes.has(vm.name)) fail("refs", `${where} ${c.name}`, `volumeMount ${vm.name} names no volume`);
      }
    }
    const volumeSources = (v) => {
      if (v.secret) return [{ kind: "Secret", name: v.secret.secretName, items: v.secret.items, optional: v.secret.optional }];
      if (v.configMap) return [{ kind: "ConfigMap", name: v.configMap.name, items: v.configMap.items, optional: v.configMap.optional }];
      if (v.projected) {
        return (v.projected.sources ?? []).flatMap((s) => s.secret ? [{ kind: "Secret", ...s.secret }] : s.configMap ? [{ kind: "ConfigMap", ...s.configMap }] : []);
      }
      return [];
    };
    for (const v of volumes.values()) {
      for (const s of volumeSources(v)) {
        if (s.optional) continue;
        checkRef(`${where} volume ${v.name}`, s.kind, s.name);
        for (const it of s.items ?? []) checkRef(`${where} volume ${v.name}`, s.kind, s.name, it.key);
      }
    }

    // service-account.
    if (spec.automountServiceAccountToken !== false) fail("service-account", where, "automountServiceAccountToken is not false on the pod");
    if (!spec.serviceAccountName) fail("service-account", where, "no serviceAccountName (the namespace default would be used)");
    else {
      const sa = find("ServiceAccount", spec.serviceAccountName);
      if (!sa) fail("service-account", where, `ServiceAccount ${spec.serviceAccountName} is not in the render`);
      else if (sa.automountServiceAccountToken !== false) fail("service-account", ref(sa), "automountServiceAccountToken is not false");
    }

    // security + resources.
    const psc = spec.securityContext ?? {};
    for (const { c, init } of allContainers(spec)) {
      const cw = `${where} ${init ? "initContainer" : "container"} ${c.name}`;
      const sc = c.securityContext ?? {};
      for (const part of ["requests", "limits"]) {
        for (const r of ["cpu", "memory"]) {
          if (c.resources?.[part]?.[r] === undefined) fail("resources", cw, `no resources.${part}.${r}`);
        }
      }
      const runAsNonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
      if (runAsNonRoot !== true) fail("security", cw, "runAsNonRoot is not true");
      const uid = sc.runAsUser ?? psc.runAsUser;
      if (uid === 0) fail("security", cw, "runs as uid 0");
      if (isParcoursImage(c.image) && uid !== PARCOURS_UID) fail("security", cw, `runAsUser is ${uid ?? "unset"}, not ${PARCOURS_UID}`);
      if (sc.readOnlyRootFilesystem !== true) fail("security", cw, "readOnlyRootFilesystem is not true");
      if (sc.allowPrivilegeEscalation !== false) fail("security", cw, "allowPrivilegeEscalation is not false");
      if (sc.privileged === true) fail("security", cw, "privileged");
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) fail("security", cw, "capabilities.drop does not include ALL");
      if ((sc.capabilities?.add ?? []).length > 0) fail("security", cw, `capabilities.add ${sc.capabilities.add.join(",")}`);
      const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") fail("security", cw, "seccompProfile is not RuntimeDefault");
      if (isParcoursImage(c.image)) {
        const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === "/tmp");
        if (!tmp || !volumes.get(tmp.name)?.emptyDir) fail("security", cw, "no emptyDir mounted on /tmp (the root filesystem is read-only)");
      }
    }

    // Parcours containers: config, probes, drain.
    for (const { c, init } of allContainers(spec)) {
      if (!isParcoursImage(c.image)) continue;
      const cw = `${where} ${init ? "initContainer" : "container"} ${c.name}`;
      const args = [...(c.command ?? []), ...(c.args ?? [])];
      const i = args.indexOf("--config");
      const configPath = i >= 0 ? args[i + 1] : (args.find((a) => a.startsWith("--config=")) ?? "").slice(9) || null;
      if (!configPath) {
        fail("config", cw, "no --config argument");
        continue;
      }
      const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === configPath || (m.subPath === undefined && configPath.startsWith(m.mountPath.replace(/\/?$/, "/"))));
      const vol = mount && volumes.get(mount.name);
      if (!vol?.configMap) {
        fail("config", cw, `${configPath} is not mounted from a ConfigMap`);
        continue;
      }
      const cmName = vol.configMap.name;
      const cm = find("ConfigMap", cmName);
      const fileKey = mount.mountPath === configPath ? mount.subPath : path.posix.relative(mount.mountPath, configPath);
      if (!cm || cm.data?.[fileKey] === undefined) {
        fail("config", cw, `ConfigMap ${cmName} has no key ${fileKey}`);
        continue;
      }
      if (isDeployment && template.metadata?.annotations?.["parcours.fr/config"] !== cmName) {
        fail("config", where, `pod annotation parcours.fr/config is ${template.metadata?.annotations?.["parcours.fr/config"] ?? "unset"}, not the config's ConfigMap ${cmName}`);
      }
      let config;
      try {
        config = flattenConfig(YAML.parse(cm.data[fileKey]), "", {});
      } catch (e) {
        fail("config", cw, `config.yaml does not parse: ${e.message}`);
        continue;
      }
      // Environment overrides (platform/config.h): PARCOURS_<KEY>.
      const env = new Map((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      const envFromSecret = new Set((c.env ?? []).filter((e) => e.valueFrom).map((e) => e.name));
      const get = (key) => env.has(envName(key)) ? env.get(envName(key)) : config[key];

      // *_file keys: the file is inside a mounted volume.
      const fileValues = [
        ...Object.keys(config).filter((k) => k.endsWith("_file") && !env.has(envName(k))).map((k) => [k, config[k]]),
        ...[...env.entries()].filter(([n]) => n.startsWith("PARCOURS_") && n.endsWith("_FILE")),
      ];
      // `migrate` and `rebuild-indicators` read database.* only: the other *_file keys concern `serve`.
      const command = (c.args ?? [])[0];
      for (const [key, file] of ["migrate", "rebuild-indicators"].includes(command) ? [] : fileValues) {
        if (!file) continue;
        const m = (c.volumeMounts ?? []).find((vm) => vm.subPath === undefined && file.startsWith(vm.mountPath.replace(/\/?$/, "/")));
        if (!m) {
          fail("config", cw, `${key} = ${file} is not inside a mounted volume`);
          continue;
        }
        const v = volumes.get(m.name);
        const keyName = path.posix.relative(m.mountPath, file);
        if (v?.secret && secrets.get(v.secret.secretName) && !secrets.get(v.secret.secretName).has(keyName)) {
          fail("config", cw, `${key} = ${file}: Secret ${v.secret.secretName} has no key ${keyName}`);
        }
        if (v?.configMap && configMaps.get(v.configMap.name) && !configMaps.get(v.configMap.name).has(keyName)) {
          fail("config", cw, `${key} = ${file}: ConfigMap ${v.configMap.name} has no key ${keyName}`);
        }
      }
      if (init || !isDeployment) continue;
      if (!get("database.dsn") && !envFromSecret.has("PARCOURS_DATABASE_DSN") && c.name !== "gateway" && !/gateway/.test(c.image)) {
        fail("config", cw, "no database.dsn (config or PARCOURS_DATABASE_DSN)");
      }

      const apiPort = portOf(get("server.listen"));
      const adminPort = portOf(get("server.admin_listen"));
      const metricsPort = portOf(get("server.metrics_listen"));
      const grpcPorts = new Set([apiPort, adminPort].filter(Boolean));
      c._grpcPorts = grpcPorts;
      for (const p of c.ports ?? []) {
        if (grpcPorts.has(p.containerPort) && !(p.name ?? "").startsWith("grpc")) {
          fail("grpc-port-name", cw, `container port ${p.containerPort} carries gRPC but is named ${p.name ?? "(none)"}`);
        }
      }
      for (const port of [apiPort, adminPort, metricsPort]) {
        if (port && !(c.ports ?? []).some((p) => p.containerPort === port)) fail("config", cw, `port ${port} of the config is not a container port`);
      }
      const ann = template.metadata?.annotations ?? {};
      if (ann["prometheus.io/scrape"] !== "true" || Number(ann["prometheus.io/port"]) !== metricsPort) {
        fail("config", where, `prometheus.io/scrape and prometheus.io/port must announce server.metrics_listen (${metricsPort})`);
      }

      // Probes: native gRPC on the admin port.
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const p = c[probe];
        if (!p) fail("probes", cw, `no ${probe}`);
        else if (p.grpc?.port !== adminPort) fail("probes", cw, `${probe} is not a gRPC probe on the admin port ${adminPort}`);
        // Readiness follows the database (parcours.readiness); liveness and start-up the process.
        else if ((p.grpc?.service ?? "") !== (probe === "readinessProbe" ? "parcours.readiness" : "")) {
          fail("probes", cw, probe === "readinessProbe" ? "readinessProbe does not check service parcours.readiness"
                                                       : `${probe} checks a service: a database outage would restart the pod`);
        }
      }

      // Drain.
      const grace = parseDuration(get("server.drain_grace") ?? "0s");
      const timeout = parseDuration(get("server.drain_timeout") ?? "20s");
      const tgps = spec.terminationGracePeriodSeconds ?? 30;
      if (grace === null || timeout === null) fail("drain", cw, "server.drain_grace or server.drain_timeout does not parse");
      else if (!(tgps > grace + timeout)) fail("drain", where, `terminationGracePeriodSeconds ${tgps} is not above drain_grace + drain_timeout (${grace + timeout}s)`);
      const age = get("server.max_connection_age");
      if (!age || parseDuration(age) === null || parseDuration(age) === Infinity) fail("drain", cw, "server.max_connection_age is not set to a finite duration");
    }

    if (isDeployment) {
      for (const { c } of allContainers(spec).filter((x) => !x.init && !isParcoursImage(x.c.image))) {
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
          if (!c[probe]) fail("probes", `${where} container ${c.name}`, `no ${probe}`);
        }
      }
      if (!(spec.topologySpreadConstraints ?? []).length) fail("topology", where, "no topologySpreadConstraints");
    }
  }

  // Services.
  for (const s of byKind("Service")) {
    const where = ref(s);
    const selected = pods.filter((p) => mapSelectorMatches(s.spec?.selector, p.labels));
    if (!selected.length) fail("grpc-port-name", where, "the selector matches no pod template of the render");
    if (s.metadata.name.endsWith("-headless") && s.spec?.clusterIP !== "None") fail("grpc-port-name", where, "a *-headless Service without clusterIP: None");
    for (const port of s.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      let carriesGrpc = false, found = false;
      for (const p of selected) {
        for (const c of p.spec.containers ?? []) {
          const cp = (c.ports ?? []).find((x) => (typeof target === "string" ? x.name === target : x.containerPort === target));
          const number = cp ? cp.containerPort : typeof target === "number" ? target : null;
          if (cp) found = true;
          if (number !== null && (c._grpcPorts?.has(number) || (cp?.name ?? "").startsWith("grpc"))) carriesGrpc = true;
        }
      }
      if (selected.length && typeof target === "string" && !found) fail("grpc-port-name", where, `targetPort ${target} is no container port of the selected pods`);
      if (carriesGrpc && !(port.name ?? "").startsWith("grpc")) fail("grpc-port-name", where, `port ${port.port} carries gRPC but is named ${port.name ?? "(none)"}`);
    }
  }

  // NetworkPolicy named ports.
  const portNames = new Set(pods.flatMap((p) => (p.spec.containers ?? []).flatMap((c) => (c.ports ?? []).map((x) => x.name)).filter(Boolean)));
  for (const np of byKind("NetworkPolicy")) {
    for (const rule of [...(np.spec?.ingress ?? []), ...(np.spec?.egress ?? [])]) {
      for (const p of rule.ports ?? []) {
        if (typeof p.port === "string" && !portNames.has(p.port)) fail("netpol-ports", ref(np), `named port ${p.port} is on no container of the render`);
      }
    }
  }

  // Scaling objects.
  for (const h of byKind("HorizontalPodAutoscaler")) {
    const t = h.spec?.scaleTargetRef;
    if (!t || !find(t.kind, t.name)) fail("scaling", ref(h), `scaleTargetRef ${t?.kind}/${t?.name} is not in the render`);
    // A replica count in the manifest would be applied over the autoscaler's at every release.
    if (t && find(t.kind, t.name)?.spec?.replicas !== undefined) fail("scaling", ref(h), `${t.kind}/${t.name} sets spec.replicas, which each apply would put back over the autoscaler's`);
  }
  for (const b of byKind("PodDisruptionBudget")) {
    if (!pods.some((p) => selectorMatches(b.spec?.selector, p.labels))) fail("scaling", ref(b), "the selector matches no pod template");
  }

  // Monitoring.
  const anchors = markdownAnchors(path.join(ROOT, "docs/operations.md"));
  const checkExpr = (where, expr) => {
    for (const name of promqlMetricNames(String(expr))) {
      if (!exported.has(name) && !EXTERNAL_METRIC.test(name)) fail("metrics", where, `metric ${name} is not exported by the services (nor kube-state-metrics/cAdvisor)`);
    }
  };
  for (const r of valid.filter((o) => o.kind === "PrometheusRule")) {
    for (const g of r.spec?.groups ?? []) {
      for (const rule of g.rules ?? []) {
        const where = `${ref(r)} ${rule.alert ?? rule.record}`;
        checkExpr(where, rule.expr);
        if (!rule.alert) continue;
        if (!rule.labels?.severity) fail("alerts", where, "no severity label");
        const url = rule.annotations?.runbook_url ?? "";
        const anchor = url.split("#")[1];
        if (!url.startsWith("docs/operations.md#") || !anchors.has(anchor)) fail("alerts", where, `runbook_url ${url || "(none)"} is not a heading of docs/operations.md`);
      }
    }
  }
  for (const cm of byKind("ConfigMap").filter((c) => c.metadata.labels?.grafana_dashboard)) {
    for (const [k, v] of Object.entries(cm.data ?? {})) {
      let dash;
      try {
        dash = JSON.parse(v);
      } catch (e) {
        fail("metrics", `${ref(cm)} ${k}`, `dashboard JSON does not parse: ${e.message}`);
        continue;
      }
      const walk = (node) => {
        if (Array.isArray(node)) return node.forEach(walk);
        if (!isObj(node)) return;
        if (typeof node.expr === "string") checkExpr(`${ref(cm)} ${k}`, node.expr.replace(/\$__rate_interval|\$\{?\w+\}?/g, "1m"));
        Object.values(node).forEach(walk);
      };
      walk(dash.panels ?? []);
    }
  }

  // Production.
  if (prod) {
    const deployments = byKind("Deployment");
    const nps = byKind("NetworkPolicy");
    if (!nps.some((n) => Object.keys(n.spec?.podSelector ?? {}).length === 0 && (n.spec?.policyTypes ?? []).includes("Ingress") && (n.spec?.policyTypes ?? []).includes("Egress") && !(n.spec?.ingress ?? []).length && !(n.spec?.egress ?? []).length)) {
      fail("prod", "NetworkPolicy", "no default-deny policy (podSelector {}, Ingress and Egress, no rules)");
    }
    for (const d of deployments) {
      const labels = d.spec?.template?.metadata?.labels ?? {};
      if (!byKind("PodDisruptionBudget").some((b) => selectorMatches(b.spec?.selector, labels))) fail("prod", ref(d), "no PodDisruptionBudget selects its pods");
      if (!byKind("HorizontalPodAutoscaler").some((h) => h.spec?.scaleTargetRef?.kind === "Deployment" && h.spec?.scaleTargetRef?.name === d.metadata.name)) fail("prod", ref(d), "no HorizontalPodAutoscaler");
      if (!nps.some((n) => Object.keys(n.spec?.podSelector ?? {}).length > 0 && selectorMatches(n.spec.podSelector, labels))) fail("prod", ref(d), "no NetworkPolicy selects its pods specifically");
      for (const { c } of allContainers(d.spec?.template?.spec ?? {})) {
        const image = c.image ?? "";
        const tag = image.includes("@") ? "digest" : (/:([^/:]+)$/.exec(image) ?? [])[1];
        if (!tag || tag === "latest") fail("prod", `${ref(d)} ${c.name}`, `image ${image} has no release tag`);
      }
    }
    for (const o of [...byKind("Secret"), ...byKind("ConfigMap")]) {
      if (o.metadata.labels?.[DEV_ONLY_LABEL] === "true") fail("prod", ref(o), "a development-only object in a production render");
    }
  }
  return { failures, stats };
}

// ---------------------------------------------------------------------------------------------
// Driver.

function render(dir) {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", maxBuffer: 256 << 20 });
  if (r.error) return { error: `cannot run kubectl: ${r.error.message}` };
  if (r.status !== 0) return { error: (r.stderr || r.stdout).trim() };
  try {
    const objects = YAML.parseAllDocuments(r.stdout).map((d) => {
      if (d.errors.length) throw new Error(d.errors[0].message);
      return d.toJS();
    }).filter((o) => o !== null);
    return { objects };
  } catch (e) {
    return { error: `kustomize output does not parse: ${e.message}` };
  }
}

const isProd = (dir) => {
  const k = ["kustomization.yaml", "kustomization.yml", "Kustomization"].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  return k ? /^#\s*k8s-check:\s*prod\b/m.test(fs.readFileSync(k, "utf8")) : false;
};

const subdirs = (dir) => fs.existsSync(dir)
  ? fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name)).sort()
  : [];

async function checkTarget(dir) {
  const rel = path.relative(ROOT, dir) || ".";
  const r = render(dir);
  if (r.error) return { rel, failures: [{ rule: "render", where: rel, message: r.error }], stats: { objects: 0, schema: 0, minimal: 0 } };
  if (!r.objects.length) return { rel, failures: [{ rule: "render", where: rel, message: "no objects" }], stats: { objects: 0, schema: 0, minimal: 0 } };
  const prod = isProd(dir);
  const out = await checkRender(r.objects, { prod });
  return { rel, prod, ...out };
}

async function main(argv) {
  const verbose = argv.includes("--verbose") || argv.includes("-v");
  const selfTestOnly = argv.includes("--self-test");
  const rendersOnly = argv.includes("--renders");
  const explicit = argv.filter((a) => !a.startsWith("-")).map((a) => path.resolve(a));
  let passed = 0, failed = 0;
  const totals = { renders: 0, objects: 0, schema: 0, minimal: 0 };

  if (!selfTestOnly) {
    const targets = explicit.length ? explicit : [...subdirs(path.join(ROOT, "k8s/overlays")), ...subdirs(path.join(ROOT, "k8s/tests"))];
    for (const dir of targets) {
      const res = await checkTarget(dir);
      totals.renders++;
      totals.objects += res.stats.objects;
      totals.schema += res.stats.schema;
      totals.minimal += res.stats.minimal;
      const tag = res.prod ? " [prod rules]" : "";
      if (res.failures.length) {
        failed++;
        console.log(`FAIL ${res.rel}${tag}: ${res.stats.objects} objects, ${res.failures.length} problem(s)`);
        for (const f of res.failures) console.log(`     [${f.rule}] ${f.where}: ${f.message}`);
      } else {
        passed++;
        console.log(`ok   ${res.rel}${tag}: ${res.stats.objects} objects (${res.stats.schema} schema-validated, ${res.stats.minimal} CRD objects without a packaged schema: minimal check)`);
      }
    }
    console.log(`renders: ${totals.renders}, objects: ${totals.objects} (${totals.schema} schema-validated strictly, ${totals.minimal} minimal)`);
  }

  if (!rendersOnly && !explicit.length) {
    // Negative self-test: each tests/k8s/bad/<case>/ must fail with exactly the rules of its
    // `expect` file ("rule: <id>" lines; "mode: prod" applies the production rules).
    const cases = subdirs(path.join(ROOT, "tests/k8s/bad"));
    let ok = 0;
    for (const dir of cases) {
      const rel = path.relative(ROOT, dir);
      const expectFile = path.join(dir, "expect");
      const expectText = fs.existsSync(expectFile) ? fs.readFileSync(expectFile, "utf8") : "";
      const expected = new Set([...expectText.matchAll(/^rule:\s*(\S+)/gm)].map((m) => m[1]));
      const prod = /^mode:\s*prod\s*$/m.test(expectText);
      let got;
      const r = render(dir);
      if (r.error) got = { failures: [{ rule: "render", where: rel, message: r.error }] };
      else got = await checkRender(r.objects, { prod });
      const rules = new Set(got.failures.map((f) => f.rule));
      const same = expected.size > 0 && rules.size === expected.size && [...expected].every((x) => rules.has(x));
      if (same) {
        ok++;
        passed++;
        console.log(`ok   self-test ${rel}: rejected [${[...rules].join(", ")}]`);
        if (verbose) for (const f of got.failures) console.log(`     [${f.rule}] ${f.where}: ${f.message}`);
      } else {
        failed++;
        console.log(`FAIL self-test ${rel}: expected [${[...expected].join(", ")}], got [${[...rules].join(", ")}]`);
        for (const f of got.failures) console.log(`     [${f.rule}] ${f.where}: ${f.message}`);
      }
    }
    console.log(`self-test: ${ok}/${cases.length} broken manifests rejected for the expected reasons`);
  }
  console.log(`k8s-check: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
