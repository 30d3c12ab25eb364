// A gRPC health probe (grpc.health.v1.Health/Check), as the kubelet's native gRPC probe does it:
//   node tests/k8s/grpc_health.mjs HOST:PORT [SERVICE] [--timeout-ms N]
//       [--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--server-name NAME]]
// Prints the status (SERVING, NOT_SERVING, ...) and exits 0 only for SERVING.
// parcoursctl cannot make this call (grpc.health.v1 is not compiled into it), hence this script;
// the messages are encoded by hand (HealthCheckRequest {string service = 1},
// HealthCheckResponse {ServingStatus status = 1}), so no .proto is needed.
import fs from "node:fs";
import grpc from "@grpc/grpc-js";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const timeoutMs = Number(opt("--timeout-ms", "3000"));
const tlsCa = opt("--tls-ca", null);
const tlsCert = opt("--tls-cert", null);
const tlsKey = opt("--tls-key", null);
const serverName = opt("--server-name", null);
const [address, service = ""] = args;
if (!address) {
  console.error("usage: grpc_health.mjs HOST:PORT [SERVICE] [--timeout-ms N] [--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--server-name NAME]]");
  process.exit(2);
}

const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function encodeRequest(name) {
  const bytes = Buffer.from(name, "utf8");
  if (bytes.length === 0) return Buffer.alloc(0);
  if (bytes.length > 127) throw new Error("service name too long for this probe");
  return Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
}

function decodeStatus(buf) {
  // Field 1, varint (tag 0x08); an empty message is status 0 (UNKNOWN).
  for (let i = 0; i < buf.length;) {
    const tag = buf[i++];
    if (tag === 0x08) return buf[i];
    if ((tag & 7) === 0) { while (buf[i++] & 0x80); continue; }
    if ((tag & 7) === 2) { i += buf[i] + 1; continue; }
    break;
  }
  return 0;
}

const creds = tlsCa
  ? grpc.credentials.createSsl(fs.readFileSync(tlsCa), tlsKey ? fs.readFileSync(tlsKey) : null, tlsCert ? fs.readFileSync(tlsCert) : null)
  : grpc.credentials.createInsecure();
const client = new grpc.Client(address, creds, serverName ? { "grpc.ssl_target_name_override": serverName } : {});
client.makeUnaryRequest(
  "/grpc.health.v1.Health/Check",
  (x) => x,
  (x) => x,
  encodeRequest(service),
  new grpc.Metadata(),
  { deadline: Date.now() + timeoutMs },
  (err, response) => {
    client.close();
    if (err) {
      console.log(`error: ${grpc.status[err.code] ?? err.code}: ${err.details}`);
      process.exit(1);
    }
    const status = STATUS[decodeStatus(response)] ?? "UNKNOWN";
    console.log(status);
    process.exit(status === "SERVING" ? 0 : 1);
  },
);
