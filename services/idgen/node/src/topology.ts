/**
 * The parts of the casemesh topology file (services/runtime/topology.py) the Node idgen reads.
 *
 * - `services.idgen`: `address` (host:port to listen on), `metrics_address` (optional, host:port of
 *   `/metrics`), `impl` (`python` or `node`; this server does not care which);
 * - `data_dir` (default `casemesh-data`): the marks go to `DATA_DIR/idgen/`;
 * - `settings.idgen`: `counter_start` (>= 1, default 1), `counter_reserve_ids` (>= 0, default 0),
 *   `snowflake_reserve_ms` (>= 0, default 1000), as IdgenSettings in services/idgen/service.py;
 * - `server.grace_s` (default 5): drain time on SIGTERM/SIGINT;
 * - `tls`: mutual TLS (services/runtime/tls.py): the CA bundle `tls.ca`, else `tls.dir/ca.pem`; this
 *   service's certificate and key `tls.services.NAME.cert`/`.key`, else `tls.dir/NAME.pem`/`.key`.
 *
 * Everything else in the file is the Python services' business and is ignored.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

/** The topology file is missing or invalid; the message names the file and field. */
export class TopologyError extends Error {}

export interface IdgenSettings {
  counterStart: bigint;
  counterReserveIds: bigint;
  snowflakeReserveMs: bigint;
}

/** The PEM files of mutual TLS: the CA bundle every peer must chain to, and this service's certificate and key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface IdgenTopology {
  address: string;
  tls: TlsFiles | null;
  metricsAddress: string | null;
  dataDir: string;
  settings: IdgenSettings;
  graceS: number;
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkAddress(value: unknown, field: string, file: string): string {
  const text = String(value);
  const cut = text.lastIndexOf(":");
  const port = text.slice(cut + 1);
  if (typeof value !== "string" || cut <= 0 || !/^[0-9]+$/.test(port) || Number(port) > 65535) {
    throw new TopologyError(`${file}: ${field}: ${JSON.stringify(value)} is not host:port (e.g. 127.0.0.1:50051)`);
  }
  return text;
}

function integer(values: Mapping, key: string, fallback: number, minimum: number, file: string): bigint {
  const value = values[key] ?? fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new TopologyError(`${file}: settings.idgen.${key}: must be a whole number (got ${JSON.stringify(value)})`);
  }
  if (value < minimum) {
    throw new TopologyError(`${file}: settings.idgen.${key}: must be at least ${minimum} (got ${value})`);
  }
  return BigInt(value);
}

function tlsFiles(tls: unknown, service: string, file: string): TlsFiles {
  if (!isMapping(tls)) throw new TopologyError(`${file}: tls: expected a mapping with dir or ca`);
  const dir = typeof tls.dir === "string" ? tls.dir : null;
  const ca = typeof tls.ca === "string" ? tls.ca : null;
  if (dir === null && ca === null) {
    throw new TopologyError(`${file}: tls: give dir (a casemesh certs init folder) or ca (with services: {NAME: {cert, key}})`);
  }
  const services = isMapping(tls.services) ? tls.services : {};
  const pair = services[service];
  if (isMapping(pair) && typeof pair.cert === "string" && typeof pair.key === "string") {
    return { ca: ca ?? join(dir as string, "ca.pem"), cert: pair.cert, key: pair.key };
  }
  if (dir === null) {
    throw new TopologyError(`${file}: tls.services.${service}: no certificate for ${JSON.stringify(service)}: give tls.services.${service}.cert and .key, or tls.dir`);
  }
  return { ca: ca ?? join(dir, "ca.pem"), cert: join(dir, `${service}.pem`), key: join(dir, `${service}.key`) };
}

const SETTINGS = ["counter_start", "counter_reserve_ids", "snowflake_reserve_ms"];

/** The idgen part of topology `file` under the name `service`; TopologyError naming the field otherwise. */
export function loadTopology(file: string, service = "idgen"): IdgenTopology {
  let data: unknown;
  try {
    data = parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new TopologyError(`${file}: cannot read topology: ${(error as Error).message}`);
  }
  if (!isMapping(data) || !isMapping(data.services)) {
    throw new TopologyError(`${file}: expected a mapping with services:`);
  }
  const endpoint = data.services[service];
  if (!isMapping(endpoint)) {
    throw new TopologyError(`${file}: service ${JSON.stringify(service)} is not in the topology (has: ${Object.keys(data.services).sort().join(", ")})`);
  }
  const tls = data.tls == null ? null : tlsFiles(data.tls, service, file);
  const settings = isMapping(data.settings) && data.settings[service] !== undefined ? data.settings[service] : {};
  if (!isMapping(settings)) {
    throw new TopologyError(`${file}: settings.${service}: expected a mapping`);
  }
  for (const key of Object.keys(settings)) {
    if (!SETTINGS.includes(key)) {
      throw new TopologyError(`${file}: settings.${service}.${key}: unknown field; known fields: ${SETTINGS.join(", ")}`);
    }
  }
  const server = isMapping(data.server) ? data.server : {};
  const graceS = server.grace_s ?? 5;
  if (typeof graceS !== "number" || graceS < 0) {
    throw new TopologyError(`${file}: server.grace_s: must be a number >= 0 (got ${JSON.stringify(graceS)})`);
  }
  return {
    address: checkAddress(endpoint.address, `services.${service}.address`, file),
    metricsAddress: endpoint.metrics_address == null ? null
      : checkAddress(endpoint.metrics_address, `services.${service}.metrics_address`, file),
    tls,
    dataDir: typeof data.data_dir === "string" ? data.data_dir : "casemesh-data",
    settings: {
      counterStart: integer(settings, "counter_start", 1, 1, file),
      counterReserveIds: integer(settings, "counter_reserve_ids", 0, 0, file),
      snowflakeReserveMs: integer(settings, "snowflake_reserve_ms", 1000, 0, file),
    },
    graceS,
  };
}
