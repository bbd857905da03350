// ---- casemesh k6 runtime (harness/export/k6/runtime.js) -------------------------------------------------
// What every exported script shares: one gRPC client per target address, calls tagged with their full method
// and journey, the SLO rate metrics, the weighted journey choice, setup() and the iteration.
// Reads PROFILE, SERVICES, PROTOS and SLO_RATES (above) and the workload's seed() and JOURNEYS.

// gRPC status names by code, as grpc.StatusCode (and casemesh's SLO documents) spell them.
const STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

// Math.random is seeded per VU from --seed (which VU runs which arrival still depends on timing).
randomSeed(PROFILE.rngSeed * 100003 + __VU);

// One client (one HTTP/2 connection per VU) per distinct address: services that share a server share it.
const clients = {};
for (const name of Object.keys(SERVICES)) {
  const target = SERVICES[name].target;
  if (!clients[target]) {
    const client = new grpc.Client();
    client.load([PROTOS.importPath], ...PROTOS.files);
    clients[target] = { client, connected: false };
  }
}

const sloRates = SLO_RATES.map((slo) => ({ ...slo, rate: new Rate(slo.metric) }));
const journeyDuration = new Trend('casemesh_journey_duration', true);
let currentJourney = 'setup';
// The last call that did not end as expected, as `Method: STATUS: message` (for error messages).
let lastFailure = '';

function connected(service) {
  const spec = SERVICES[service];
  if (!spec) throw new Error(`unknown service ${service}; known: ${Object.keys(SERVICES).join(', ')}`);
  const entry = clients[spec.target];
  if (!entry.connected) {
    entry.client.connect(spec.target, { plaintext: true, timeout: '10s' });
    entry.connected = true;
  }
  return entry.client;
}

function callParams(fullMethod) {
  return { timeout: `${PROFILE.requestTimeoutMs}ms`, tags: { rpc: fullMethod, journey: currentJourney } };
}

// Records one finished call: a check (OK, or one of the statuses the journey expects) and the SLO rates.
function recordCall(fullMethod, response, expected) {
  // k6 gives the status as a Go codes.Code object: Number() makes it the numeric code.
  const status = (response && STATUS_NAMES[Number(response.status)]) || 'UNKNOWN';
  const ok = status === 'OK' || expected.includes(status);
  check(status, { [`${fullMethod.split('/')[1]} status ${['OK', ...expected].join(' or ')}`]: () => ok });
  if (!ok) lastFailure = `${fullMethod}: ${status}: ${response && response.error ? response.error.message : 'no response'}`;
  if (currentJourney !== 'setup') {
    for (const slo of sloRates) {
      if ((slo.rpc === null || slo.rpc === fullMethod) && (slo.totalCodes === null || slo.totalCodes.includes(status))) {
        slo.rate.add(slo.goodCodes === null || slo.goodCodes.includes(status));
      }
    }
  }
  return status === 'OK' ? response : null;
}

// call(service, method, request, expected = []): one unary RPC; returns the response when it ended OK, else null
// (statuses in `expected`, e.g. ['NOT_FOUND'], pass the check: they are the answer the journey asks for).
function call(service, method, request, expected = []) {
  const fullMethod = `${SERVICES[service].fullName}/${method}`;
  const response = connected(service).invoke(fullMethod, request, callParams(fullMethod));
  return recordCall(fullMethod, response, expected);
}

// callAsync: the same, returning a Promise (for seeding with several calls in flight).
async function callAsync(service, method, request, expected = []) {
  const fullMethod = `${SERVICES[service].fullName}/${method}`;
  const response = await connected(service).asyncInvoke(fullMethod, request, callParams(fullMethod));
  return recordCall(fullMethod, response, expected);
}

// Fail at start, not mid-run, when the profile names a journey this workload's template lacks.
for (const journey of PROFILE.journeys) {
  if (typeof JOURNEYS[journey.name] !== 'function') {
    throw new Error(`journey ${journey.name} of profile ${PROFILE.name} has no k6 template in harness/export/k6/`);
  }
}
const cumulativeWeights = [];
PROFILE.journeys.reduce((sum, journey) => { cumulativeWeights.push(sum + journey.weight); return sum + journey.weight; }, 0);

// The journey of one arrival: drawn with probability weight / sum of weights, as the harness does.
function pickJourney() {
  const x = Math.random() * cumulativeWeights[cumulativeWeights.length - 1];
  let i = 0;
  while (i < cumulativeWeights.length - 1 && cumulativeWeights[i] <= x) i++;
  return PROFILE.journeys[i];
}

// Seed data is created once, before the load, and handed to every VU (as JSON).
export async function setup() {
  return await seed(PROFILE.seed);
}

export default function (data) {
  const journey = pickJourney();
  currentJourney = journey.name;
  const started = Date.now();
  JOURNEYS[journey.name](journey.params, data);
  journeyDuration.add(Date.now() - started, { journey: journey.name });
}
