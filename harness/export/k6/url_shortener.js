// ---- url-shortener journeys (harness/export/k6/url_shortener.js) ---------------------------------------
// The journeys and seeding of harness/workloads/url_shortener.py, request for request: the same RPCs, the same
// field values (Zipf popularity over seeded codes, the visitor-country mix, generated long URLs of url_bytes).
// Uses call()/callAsync() of the runtime below; params arrive validated, with the profile's defaults filled in.

const COUNTRIES = ['US', 'IN', 'BR', 'DE', 'GB', 'JP', 'FR', 'ID', 'NG', 'MX'];
const COUNTRY_WEIGHTS = [30, 15, 8, 7, 7, 6, 5, 5, 4, 3];
const BASE62 = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const URL_HEAD = 'https://example.com/articles/';

function randomBase62(length) {
  let text = '';
  for (let i = 0; i < length; i++) text += BASE62[Math.floor(Math.random() * BASE62.length)];
  return text;
}

function longUrl(size) {
  return URL_HEAD + randomBase62(Math.max(size - URL_HEAD.length, 1));
}

function country() {
  const x = Math.random() * 100; // the weights add up to 100
  let sum = 0;
  for (let i = 0; i < COUNTRIES.length; i++) {
    sum += COUNTRY_WEIGHTS[i];
    if (x < sum) return COUNTRIES[i];
  }
  return COUNTRIES[COUNTRIES.length - 1];
}

// Zipf popularity: seeded code of rank r (1-based, in seeding order) drawn with weight 1 / r^s.
const zipfCdfs = {};
function zipfCode(codes, exponent) {
  let cdf = zipfCdfs[exponent];
  if (!cdf) {
    cdf = zipfCdfs[exponent] = new Float64Array(codes.length);
    let sum = 0;
    for (let r = 1; r <= codes.length; r++) cdf[r - 1] = sum += 1 / Math.pow(r, exponent);
  }
  const x = Math.random() * cdf[cdf.length - 1];
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < x) lo = mid + 1; else hi = mid;
  }
  return codes[lo];
}

// seed.urls codes made by Shorten before the load, seed.concurrency calls in flight; their order is their rank.
async function seed(params) {
  const codes = new Array(params.urls);
  let next = 0;
  async function worker() {
    while (next < params.urls) {
      const i = next++;
      const response = await callAsync('urlshortener', 'Shorten', { long_url: longUrl(80) });
      if (response === null) throw new Error(`seeding failed: ${lastFailure}`);
      codes[i] = response.message.code;
    }
  }
  await Promise.all(Array.from({ length: Math.min(params.concurrency, params.urls) }, worker));
  return { codes };
}

const JOURNEYS = {
  // Resolve a seeded code picked by Zipf popularity (the redirect).
  resolve(params, data) {
    call('urlshortener', 'Resolve', { code: zipfCode(data.codes, params.zipf_exponent), country_code: country() });
  },
  // Resolve a code that does not exist: generated codes have 7 characters, these 8; NOT_FOUND is the answer.
  resolve_miss(params, data) {
    call('urlshortener', 'Resolve', { code: randomBase62(8), country_code: country() }, ['NOT_FOUND']);
  },
  // Shorten a fresh long URL. (url_bytes_per_size_unit only applies to sized trace arrivals, which k6 cannot
  // replay: the URL is always url_bytes long here.)
  shorten(params, data) {
    call('urlshortener', 'Shorten', { long_url: longUrl(params.url_bytes), ttl_seconds: params.ttl_seconds });
  },
  // Read the click stats of a seeded code (a hop to the analytics service).
  get_stats(params, data) {
    call('urlshortener', 'GetStats', { code: zipfCode(data.codes, params.zipf_exponent) });
  },
  // Create a code and follow it at once (read-your-write).
  shorten_then_resolve(params, data) {
    const created = call('urlshortener', 'Shorten', { long_url: longUrl(params.url_bytes), ttl_seconds: params.ttl_seconds });
    if (created !== null) call('urlshortener', 'Resolve', { code: created.message.code, country_code: country() });
  },
};
