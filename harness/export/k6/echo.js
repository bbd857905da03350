// ---- echo journeys (harness/export/k6/echo.js) ---------------------------------------------------------
// The journey of harness/workloads/echo.py: one Echo of payload_bytes bytes (benchmarks/echo_server.py).
// Nothing is seeded. Uses call() of the runtime below.

const payloads = {};

async function seed(params) {
  return {};
}

const JOURNEYS = {
  // Echo a payload of payload_bytes bytes (bytes fields travel base64-encoded in k6's JSON requests).
  echo(params, data) {
    let payload = payloads[params.payload_bytes];
    if (payload === undefined) payload = payloads[params.payload_bytes] = encoding.b64encode('x'.repeat(params.payload_bytes));
    call('echo', 'Echo', { payload });
  },
};
