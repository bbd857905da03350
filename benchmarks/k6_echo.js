// k6's side of benchmarks/workers_k6.py (docs/benchmarks.md): EchoService/Echo of a 100-byte payload at a
// constant arrival rate, what benchmarks/profiles/echo.yaml makes `casemesh run` send.
//
//   RATE=2000 WARMUP_S=2 DURATION_S=6 TARGET=127.0.0.1:PORT PROTOS=$PWD/protos \
//     k6 run --quiet --no-usage-report --summary-export summary.json benchmarks/k6_echo.js
//
// k6/net/grpc with the casemesh bench proto (protos/casemesh/bench/v1/echo.proto), the constant-arrival-rate
// executor: a warm-up scenario, then the measured one (its metrics are tagged scenario:measured; the
// thresholds below are always met and only make k6 export those submetrics). One gRPC client, so one
// HTTP/2 connection, per VU, connected on its first iteration; a 1 s deadline per call, as the profile's
// request_timeout_ms. setup() logs a marker the benchmark samples k6's CPU at: what comes before it
// (VU initialisation, proto parsing) is start-up, what comes after is load.

import grpc from 'k6/net/grpc';
import { check } from 'k6';
import encoding from 'k6/encoding';

const RATE = Number(__ENV.RATE || 1000);
const WARMUP_S = Number(__ENV.WARMUP_S || 2);
const DURATION_S = Number(__ENV.DURATION_S || 6);
const PRE_ALLOCATED_VUS = Number(__ENV.VUS || 20);
const MAX_VUS = Number(__ENV.MAX_VUS || 400);

const client = new grpc.Client();
client.load([__ENV.PROTOS], 'casemesh/bench/v1/echo.proto');
const payload = encoding.b64encode('x'.repeat(100)); // bytes fields travel base64-encoded in k6's JSON requests

const scenario = { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', preAllocatedVUs: PRE_ALLOCATED_VUS, maxVUs: MAX_VUS };

export const options = {
  scenarios: {
    warmup: { ...scenario, duration: `${WARMUP_S}s`, gracefulStop: '1s' },
    measured: { ...scenario, duration: `${DURATION_S}s`, startTime: `${WARMUP_S}s` },
  },
  thresholds: {
    'grpc_req_duration{scenario:measured}': ['max>=0'],
    'dropped_iterations{scenario:measured}': ['count>=0'],
    'iterations{scenario:measured}': ['count>=0'],
    'checks{scenario:measured}': ['rate>=0'],
  },
  summaryTrendStats: ['med', 'p(90)', 'p(99)', 'max'],
};

export function setup() {
  console.log('casemesh-bench: load starts');
}

let connected = false;

export default function () {
  if (!connected) {
    client.connect(__ENV.TARGET, { plaintext: true, timeout: '10s' });
    connected = true;
  }
  const response = client.invoke('casemesh.bench.v1.EchoService/Echo', { payload }, { timeout: '1s' });
  check(response, { 'status OK': (r) => r && r.status === grpc.StatusOK });
}
