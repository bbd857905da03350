// k6 against casemesh's URL shortener over real gRPC (k6/net/grpc), with the request and response types
// parsed from casemesh's own protos/. Driven open-loop: a constant arrival rate of Resolve calls.
//
// By hand: k6 run --no-usage-report tests/interop/k6/resolve.js
// Environment (tests/interop/test_k6.py sets it):
//   CASEMESH_TARGET   host:port of UrlShortenerService (default 127.0.0.1:50051, where `casemesh serve` listens)
//   CASEMESH_PROTOS   import path of the protos (default: the repository's protos/; k6 resolves relative paths
//                     against this script's directory)
//   RATE              Resolve calls per second (default 50)
//   DURATION          how long to drive them, in k6's duration syntax (default 3s)
//   P99_MS            threshold on Resolve's p99 in ms (default 250)
//   CODES             codes seeded in setup() and resolved in turn (default 20)
import grpc from 'k6/net/grpc';
import { check, fail } from 'k6';

const TARGET = __ENV.CASEMESH_TARGET || '127.0.0.1:50051';
const RATE = parseInt(__ENV.RATE || '50', 10);
const CODES = parseInt(__ENV.CODES || '20', 10);
const SERVICE = 'casemesh.urlshortener.v1.UrlShortenerService';

const client = new grpc.Client();
client.load([__ENV.CASEMESH_PROTOS || '../../../protos'], 'casemesh/urlshortener/v1/urlshortener.proto');

export const options = {
  scenarios: {
    resolve: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '3s',
      // Every VU up front (a VU started mid-run comes too late: its arrival is dropped): RATE x the 1 s timeout.
      preAllocatedVUs: RATE,
      maxVUs: RATE,
    },
  },
  thresholds: {
    // Only the Resolve calls of the scenario (setup's Shorten calls carry rpc:Shorten).
    'grpc_req_duration{rpc:Resolve}': [`p(99)<${__ENV.P99_MS || '250'}`],
    checks: ['rate==1.0'],
    // The generator kept its schedule: no iteration was dropped for want of a free VU.
    dropped_iterations: ['count==0'],
  },
};

export function setup() {
  client.connect(TARGET, { plaintext: true, timeout: '5s' });
  const codes = [];
  for (let i = 0; i < CODES; i++) {
    const response = client.invoke(`${SERVICE}/Shorten`, { long_url: `https://example.com/k6/${i}` }, { tags: { rpc: 'Shorten' } });
    if (response.status !== grpc.StatusOK) fail(`Shorten failed: ${response.status} ${JSON.stringify(response.error)}`);
    codes.push(response.message.code);
  }
  client.close();
  return { codes };
}

export default function (data) {
  if (__ITER === 0) client.connect(TARGET, { plaintext: true, timeout: '5s' });
  const code = data.codes[__ITER % data.codes.length];
  const response = client.invoke(`${SERVICE}/Resolve`, { code, country_code: 'DE' }, { tags: { rpc: 'Resolve' }, timeout: '1s' });
  check(response, {
    'Resolve is OK': (r) => r && r.status === grpc.StatusOK,
    'Resolve returns the URL': (r) => r && r.message && r.message.longUrl.startsWith('https://example.com/k6/'),
  });
}
