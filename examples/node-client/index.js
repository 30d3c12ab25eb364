// A CEP operator's first calls to Parcours from Node.js: register a beneficiary, open a case,
// read it back. Everything goes through the gateway's OperatorService with a bearer token; the
// operator is the token's principal (operator:<id>), never a request field.
//
//   PARCOURS_TOKEN=$(../../scripts/dev token operator:ml-rennes) node index.js
//
// Environment:
//   PARCOURS_TOKEN     required: a JWT whose principal is operator:<id>
//   PARCOURS_GATEWAY   gateway address, default 127.0.0.1:50054 (scripts/dev up)
//   PARCOURS_CA_FILE   PEM CA of the gateway's certificate: TLS when set, plaintext otherwise
//                      (scripts/dev up serves plaintext on loopback)
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const ROOT = path.resolve(__dirname, '..', '..');
const definition = protoLoader.loadSync('parcours/gateway/v1/operator.proto', {
  // Parcours' protos, and googleapis (google/api, google/rpc, google/type) from the npm package
  // google-proto-files that the repository's own npm install provides (scripts/deps.sh).
  includeDirs: [path.join(ROOT, 'protos'), path.join(ROOT, 'node_modules', 'google-proto-files')],
  keepCase: false, // camelCase field names, as in the proto3 JSON mapping
  enums: String,   // enum values by name: "SEX_FEMALE"
  longs: String,
  defaults: false,
  oneofs: true,
});
const { OperatorService } = grpc.loadPackageDefinition(definition).parcours.gateway.v1;

const address = process.env.PARCOURS_GATEWAY || '127.0.0.1:50054';
const token = process.env.PARCOURS_TOKEN;
if (!token) {
  console.error('PARCOURS_TOKEN is not set; e.g. PARCOURS_TOKEN=$(scripts/dev token operator:ml-rennes)');
  process.exit(2);
}
const channelCredentials = process.env.PARCOURS_CA_FILE
  ? grpc.credentials.createSsl(fs.readFileSync(process.env.PARCOURS_CA_FILE))
  : grpc.credentials.createInsecure();
const client = new OperatorService(address, channelCredentials);

// Unary call as a promise, with the bearer token and a 10 s deadline.
function call(method, request) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const deadline = new Date(Date.now() + 10_000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, response) => {
      if (err) {
        err.message = `${method}: ${grpc.status[err.code]} (${err.code}): ${err.details}`;
        reject(err);
      } else {
        resolve(response);
      }
    });
  });
}

// google.protobuf.Timestamp arrives as {seconds, nanos}: print it as RFC 3339, like the JSON mapping.
function withTimestamps(key, value) {
  if (value && typeof value === 'object' && 'seconds' in value &&
      Object.keys(value).every((k) => k === 'seconds' || k === 'nanos')) {
    return new Date(Number(value.seconds) * 1000 + Math.floor((value.nanos || 0) / 1e6)).toISOString();
  }
  return value;
}

async function main() {
  const now = new Date();
  const today = { year: now.getFullYear(), month: now.getMonth() + 1, day: now.getDate() };

  // 1. The beneficiary: the operator's own identifier goes in, a pseudonym comes out.
  const beneficiary = await call('RegisterBeneficiary', {
    externalId: 'NODE-EXAMPLE-0001',
    beneficiary: {
      birthYear: 1990,
      sex: 'SEX_MALE',
      department: '35',
      status: 'EMPLOYMENT_STATUS_EMPLOYEE',
      qualificationLevel: 4,
    },
    contact: { displayName: 'Yann Le Gall', email: 'yann.legall@example.org' },
  });
  console.log('registered', beneficiary.name, `(region ${beneficiary.region})`);

  // 2. A case for them, opened today at level 1 of the 2019 catalogue. request_id makes a retry
  //    of the same open harmless.
  const opened = await call('OpenCase', {
    case: { beneficiary: beneficiary.name, openingDate: today, level: '2019/1', demands: ['DEMAND_KIND_PROJECT'] },
    requestId: crypto.randomUUID(),
  });
  console.log('opened', opened.name, 'by', opened.operator, 'state', opened.state);

  // 3. Read it back.
  const read = await call('GetCase', { name: opened.name });
  console.log(JSON.stringify(read, withTimestamps, 2));
}

main()
  .catch((err) => {
    console.error(err.message);
    process.exitCode = 1;
  })
  .finally(() => client.close());
