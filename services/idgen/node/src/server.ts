/**
 * The Node implementation of casemesh.idgen.v1.IdGeneratorService (TypeScript on @grpc/grpc-js).
 *
 *   node build/node/idgen/server.js --topology FILE [--service NAME] [--protos DIR]
 *
 * Behaves as the Python idgen (services/idgen/service.py) from the same contract
 * (protos/casemesh/idgen/v1/idgen.proto, loaded at run time with @grpc/proto-loader):
 *
 * - LeaseIds: INVALID_ARGUMENT naming `count` (1..10000) or `layout`; the counter and Snowflake layouts
 *   (generators.ts); RESOURCE_EXHAUSTED when a layout's ID space is used up; UNAVAILABLE when the
 *   high-water mark cannot be written. Every lease is covered by a mark fsynced in DATA_DIR/idgen before
 *   it is returned, in the same files as the Python idgen (highWater.ts), so a restart of either
 *   implementation on the same data folder never re-issues an ID. Worker ID: CASEMESH_IDGEN_WORKER_ID.
 * - Authorization: LeaseIds is internal, callable by spiffe://casemesh.local/svc/urlshortener only (the
 *   `access` of the Python definition), proven by the mTLS peer certificate's SPIFFE ID or else a caller
 *   token signed with the mesh secret (identity.ts); PERMISSION_DENIED or UNAUTHENTICATED otherwise.
 *   Health is open.
 * - mTLS when the topology has `tls:` (topology.ts): the server requires a client certificate.
 * - grpc.health.v1.Health: SERVING for "" and casemesh.idgen.v1.IdGeneratorService; NOT_SERVING while draining.
 * - /metrics on the topology's metrics_address (metrics.ts); spans (tracing.ts).
 *
 * Exit codes: 0 after SIGTERM/SIGINT and a drain of at most server.grace_s; 2 for a configuration
 * error (topology, settings, mesh secret, mark file); 1 when the address cannot be bound.
 */

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getSystemErrorMap } from "node:util";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation } from "grpc-health-check";

import {
  COUNTER_MAXIMUM, CounterGenerator, MAX_TIMESTAMP, ResourceExhausted, SnowflakeGenerator, type Run,
} from "./generators.js";
import { DurableLeases, HighWaterMark, MarkFileError } from "./highWater.js";
import {
  allowTestIdentityFromEnv, Authorizer, CALLER_METADATA_KEY, loadMeshSecrets, SecretError, serviceIdentity,
  TEST_IDENTITY, tlsIdentity, TokenVerifier,
} from "./identity.js";
import { GO_CODE_NAMES, ServerMetrics } from "./metrics.js";
import { loadTopology, TopologyError, type TlsFiles } from "./topology.js";
import { RpcTracing } from "./tracing.js";

export const FULL_SERVICE = "casemesh.idgen.v1.IdGeneratorService";
const LEASE_METHOD = `/${FULL_SERVICE}/LeaseIds`;
export const MAX_LEASE = 10_000;
const LAYOUT_COUNTER = 1;
const LAYOUT_SNOWFLAKE = 2;
/** Topology names allowed to call LeaseIds (services/idgen/service.py DEFINITION.access). */
const LEASE_CALLERS = ["urlshortener"];

class ConfigError extends Error {}

interface Options {
  topology: string;
  service: string;
  protos: string;
}

function parseArgs(argv: string[]): Options {
  const here = dirname(fileURLToPath(import.meta.url));
  const options: Partial<Options> = { service: "idgen", protos: resolve(here, "../../../protos") };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (!["--topology", "--service", "--protos"].includes(flag)) {
      throw new ConfigError(`unknown argument ${JSON.stringify(flag)} (usage: server.js --topology FILE [--service NAME] [--protos DIR])`);
    }
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    options[flag.slice(2) as keyof Options] = value;
    i++;
  }
  options.topology ??= process.env.CASEMESH_TOPOLOGY;
  if (!options.topology) throw new ConfigError("--topology FILE is required (or CASEMESH_TOPOLOGY)");
  return options as Options;
}

function workerIdFromEnv(): number {
  const raw = process.env.CASEMESH_IDGEN_WORKER_ID ?? "0";
  const value = Number(raw.trim());
  if (!/^\s*[0-9]+\s*$/.test(raw) || value > 1023) {
    throw new ConfigError(`CASEMESH_IDGEN_WORKER_ID must be a whole number in 0..1023 (got ${JSON.stringify(raw)})`);
  }
  return value;
}

/** A call's outcome: a gRPC status code and message (OK: the response). */
class CallError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

interface LeaseRequest { count: number; layout: number }

/** The LeaseIds handler: validation, the layout's durable leases, the response. */
export class IdGenerator {
  constructor(private readonly leases: Map<number, DurableLeases>, private readonly workerId: number) {}

  async lease(request: LeaseRequest): Promise<object> {
    if (!(request.count >= 1 && request.count <= MAX_LEASE)) {
      throw new CallError(grpc.status.INVALID_ARGUMENT, `count: must be 1 to ${MAX_LEASE} (got ${request.count})`);
    }
    const leases = this.leases.get(request.layout);
    if (leases === undefined) {
      throw new CallError(grpc.status.INVALID_ARGUMENT,
        `layout: must be ID_LAYOUT_COUNTER or ID_LAYOUT_SNOWFLAKE (got ${request.layout})`);
    }
    let runs: Run[];
    try {
      runs = await leases.lease(request.count);
    } catch (error) {
      if (error instanceof ResourceExhausted) throw new CallError(grpc.status.RESOURCE_EXHAUSTED, error.message);
      const errno = error as NodeJS.ErrnoException;
      if (typeof errno.code === "string" && typeof errno.syscall === "string") {
        console.error(`cannot write the ID high-water mark ${leases.mark.path}: ${errno.message}`);
        const reason = getSystemErrorMap().get(errno.errno ?? 0)?.[1] ?? errno.code; // "no space left on device"
        throw new CallError(grpc.status.UNAVAILABLE, `cannot persist the ID high-water mark: ${reason}`);
      }
      throw error;
    }
    return {
      ranges: runs.map(([start, count]) => ({ start: start.toString(), count })),
      layout: request.layout,
      worker_id: request.layout === LAYOUT_SNOWFLAKE ? this.workerId : 0,
    };
  }
}

/** The counter and Snowflake leases of `dataDir`/`service`, resumed above the stored marks. */
function buildLeases(folder: string, settings: ReturnType<typeof loadTopology>["settings"], workerId: number): Map<number, DurableLeases> {
  mkdirSync(folder, { recursive: true });
  const counterMark = new HighWaterMark(join(folder, "counter.mark"));
  const stored = counterMark.load();
  let start = settings.counterStart > (stored ?? 0n) + 1n ? settings.counterStart : (stored ?? 0n) + 1n;
  if (start > COUNTER_MAXIMUM + 1n) start = COUNTER_MAXIMUM + 1n; // past the maximum: every lease is RESOURCE_EXHAUSTED
  const counter = new CounterGenerator(start);
  const counterLeases = new DurableLeases(counter, counterMark, (runs) => runs[runs.length - 1][0] + BigInt(runs[runs.length - 1][1]) - 1n,
    counter.nextId - 1n, settings.counterReserveIds, counter.maximum);

  const snowflakeMark = new HighWaterMark(join(folder, `snowflake-${workerId}.mark`));
  const snowflake = new SnowflakeGenerator(workerId);
  const storedMs = snowflakeMark.load();
  if (storedMs !== null) snowflake.resumeAfter(Number(storedMs));
  const snowflakeLeases = new DurableLeases(snowflake, snowflakeMark, () => BigInt(snowflake.lastMs),
    storedMs ?? -1n, settings.snowflakeReserveMs, BigInt(MAX_TIMESTAMP));
  if (stored !== null || storedMs !== null) {
    console.log(`resuming above the stored marks in ${folder}: counter from ${counter.nextId}, Snowflake after ${storedMs} ms`);
  }
  return new Map([[LAYOUT_COUNTER, counterLeases], [LAYOUT_SNOWFLAKE, snowflakeLeases]]);
}

/** Plaintext, or with `tls` mutual TLS: a client certificate chaining to the CA is required. */
function serverCredentials(tls: TlsFiles | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(`tls: cannot read the ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return grpc.ServerCredentials.createSsl(read(tls.ca, "CA bundle"),
    [{ cert_chain: read(tls.cert, "certificate"), private_key: read(tls.key, "key") }], true);
}

function first(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

async function main(): Promise<number> {
  let options: Options;
  let topology: ReturnType<typeof loadTopology>;
  let secrets: string[];
  let leases: Map<number, DurableLeases>;
  let workerId: number;
  let credentials: grpc.ServerCredentials;
  try {
    options = parseArgs(process.argv.slice(2));
    topology = loadTopology(options.topology, options.service);
    secrets = loadMeshSecrets();
    workerId = workerIdFromEnv();
    leases = buildLeases(join(topology.dataDir, options.service), topology.settings, workerId);
    credentials = serverCredentials(topology.tls);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof TopologyError || error instanceof SecretError || error instanceof MarkFileError) {
      console.error(`config error: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const protoFile = join(options.protos, "casemesh/idgen/v1/idgen.proto");
  if (!existsSync(protoFile)) {
    console.error(`config error: ${protoFile} not found (--protos DIR: the repository's protos/ folder)`);
    return 2;
  }
  const definition = protoLoader.loadSync(protoFile, {
    includeDirs: [options.protos], keepCase: true, longs: String, enums: Number, defaults: true,
  });
  const serviceDefinition = definition[FULL_SERVICE] as grpc.ServiceDefinition;

  const serviceName = process.env.OTEL_SERVICE_NAME || options.service;
  const tracing = new RpcTracing(serviceName);
  const metrics = new ServerMetrics();
  const allowTest = allowTestIdentityFromEnv();
  if (allowTest) console.warn(`the test identity (${TEST_IDENTITY}) may call every method (CASEMESH_ALLOW_TEST_IDENTITY): for tests only`);
  const authorizer = new Authorizer(new TokenVerifier(secrets),
    new Map([[LEASE_METHOD, new Set(LEASE_CALLERS.map(serviceIdentity))]]), allowTest);
  const generator = new IdGenerator(leases, workerId);
  let draining = false;

  const leaseIds: grpc.handleUnaryCall<LeaseRequest, object> = (call, callback) => {
    const began = process.hrtime.bigint();
    const labels = { grpc_type: "unary", grpc_service: FULL_SERVICE, grpc_method: "LeaseIds" };
    metrics.started.inc(labels);
    const span = tracing.serverSpan(LEASE_METHOD, first(call.metadata, "traceparent"), first(call.metadata, "tracestate"));
    const finish = (code: grpc.status, message: string, response?: object) => {
      metrics.unary(FULL_SERVICE, "LeaseIds", code, Number(process.hrtime.bigint() - began) / 1e9);
      RpcTracing.end(span, code, grpc.status[code]);
      if (code === grpc.status.OK) callback(null, response);
      else callback({ code, details: message });
    };
    if (draining) {
      finish(grpc.status.UNAVAILABLE, `${options.service} is shutting down`);
      return;
    }
    const peer = topology.tls === null ? null : tlsIdentity(call.getAuthContext().sslPeerCertificate?.subjectaltname);
    const denial = authorizer.check(LEASE_METHOD, first(call.metadata, CALLER_METADATA_KEY), peer);
    if (denial !== null) {
      metrics.denied.inc({ grpc_service: FULL_SERVICE, grpc_method: "LeaseIds", caller: denial.caller });
      finish(grpc.status[denial.code], denial.message);
      return;
    }
    generator.lease(call.request).then(
      (response) => finish(grpc.status.OK, "", response),
      (error: Error) => {
        if (error instanceof CallError) finish(error.code, error.message);
        else {
          console.error(`unexpected error in ${LEASE_METHOD}:`, error);
          finish(grpc.status.UNKNOWN, `unexpected ${error.name} in ${LEASE_METHOD}`);
        }
      },
    );
  };

  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  server.addService(serviceDefinition, { LeaseIds: leaseIds });
  const health = new HealthImplementation({ "": "SERVING", [FULL_SERVICE]: "SERVING" });
  health.addToServer(server);
  try {
    await new Promise<number>((done, fail) =>
      server.bindAsync(topology.address, credentials, (error, port) => (error ? fail(error) : done(port))));
    if (topology.metricsAddress !== null) await metrics.serve(topology.metricsAddress);
  } catch (error) {
    console.error(`cannot listen: ${(error as Error).message}`);
    return 1;
  }
  console.log(`serving ${options.service} (Node ${process.version}, @grpc/grpc-js) on ${topology.address}` +
    (topology.tls ? " with mTLS" : "") +
    (topology.metricsAddress ? `, /metrics on ${topology.metricsAddress}` : ""));

  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      if (draining) return;
      draining = true;
      console.log(`${signal}: draining for at most ${topology.graceS} s`);
      health.setStatus("", "NOT_SERVING");
      health.setStatus(FULL_SERVICE, "NOT_SERVING");
      const force = setTimeout(() => server.forceShutdown(), topology.graceS * 1000);
      server.tryShutdown(() => {
        clearTimeout(force);
        done();
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    // As services/runtime/parent_watch.py: a mesh child stops when the process that started it is gone.
    const parent = Number(process.env.CASEMESH_PARENT_PID ?? "");
    if (Number.isInteger(parent) && parent > 0) {
      const watch = setInterval(() => {
        if (process.ppid !== parent) {
          clearInterval(watch);
          console.log(`parent process ${parent} is gone: stopping, as on SIGTERM`);
          stop("parent exit");
        }
      }, 1000);
      watch.unref();
    }
  });
  await tracing.shutdown();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
