/**
 * Prometheus metrics named as go-grpc-prometheus names them, the same families and labels as the
 * Python services (services/runtime/metrics.py), so dashboards and the harness's Prometheus twins
 * read either implementation: grpc_server_started_total, grpc_server_handled_total (with grpc_code
 * in Go's spelling: OK, InvalidArgument, ...), grpc_server_handling_seconds (histogram, seconds, the
 * same buckets), grpc_server_msg_received_total, grpc_server_msg_sent_total, all labelled grpc_type,
 * grpc_service, grpc_method; and casemesh_server_denied_total{grpc_service, grpc_method, caller}.
 * Served as http://METRICS_ADDRESS/metrics.
 */

import { createServer, type Server } from "node:http";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];
const LABELS = ["grpc_type", "grpc_service", "grpc_method"] as const;

/** gRPC status code number → its name as Go's codes.Code.String() spells it. */
export const GO_CODE_NAMES = [
  "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
  "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
  "Internal", "Unavailable", "DataLoss", "Unauthenticated",
];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly started = new Counter({ name: "grpc_server_started_total", help: "Total number of RPCs started on the server.", labelNames: LABELS, registers: [this.registry] });
  readonly handled = new Counter({ name: "grpc_server_handled_total", help: "Total number of RPCs completed on the server, regardless of success or failure.", labelNames: [...LABELS, "grpc_code"], registers: [this.registry] });
  readonly handlingSeconds = new Histogram({ name: "grpc_server_handling_seconds", help: "Histogram of response latency (seconds) of gRPC calls handled by the server.", labelNames: LABELS, buckets: LATENCY_BUCKETS_S, registers: [this.registry] });
  readonly msgReceived = new Counter({ name: "grpc_server_msg_received_total", help: "Total number of RPC stream messages received from the client.", labelNames: LABELS, registers: [this.registry] });
  readonly msgSent = new Counter({ name: "grpc_server_msg_sent_total", help: "Total number of gRPC stream messages sent to the client.", labelNames: LABELS, registers: [this.registry] });
  readonly denied = new Counter({ name: "casemesh_server_denied_total", help: "Calls refused by per-method authorization (PERMISSION_DENIED or UNAUTHENTICATED), by method and caller identity (none: no identity; invalid: a bad token).", labelNames: ["grpc_service", "grpc_method", "caller"], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry }); // process_* and nodejs_* (event-loop lag, GC)
  }

  /** Count a unary call: started, one message each way when OK, handled with `code`, its latency. */
  unary(service: string, method: string, code: number, seconds: number): void {
    const labels = { grpc_type: "unary", grpc_service: service, grpc_method: method };
    this.msgReceived.inc(labels);
    if (code === 0) this.msgSent.inc(labels);
    this.handled.inc({ ...labels, grpc_code: GO_CODE_NAMES[code] ?? String(code) });
    this.handlingSeconds.observe(labels, seconds);
  }

  /** Serve /metrics on `address` (host:port); resolves once listening. */
  serve(address: string): Promise<Server> {
    const cut = address.lastIndexOf(":");
    const host = address.slice(0, cut).replace(/^\[(.*)\]$/, "$1");
    const port = Number(address.slice(cut + 1));
    const server = createServer((request, response) => {
      if (request.url?.split("?")[0] !== "/metrics") {
        response.writeHead(404).end("only /metrics here\n");
        return;
      }
      this.registry.metrics().then(
        (text) => response.writeHead(200, { "Content-Type": this.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(String(error)),
      );
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
