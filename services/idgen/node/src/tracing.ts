/**
 * OpenTelemetry tracing as services/runtime/tracing.py does it, so that one trace crosses Python and Node:
 *
 * - a SERVER span per call that carries W3C `traceparent` (the caller's trace, parent-based sampling),
 *   named `pkg.Service/Method` with rpc.system, rpc.service, rpc.method and rpc.grpc.status_code;
 * - calls without `traceparent` start a trace at CASEMESH_TRACE_RATIO (default 0.01; 0: never, as
 *   the embedded mesh of `casemesh run` sets it);
 * - CASEMESH_TRACES_DIR set → spans appended to `DIR/<service>-<pid>.otlp.jsonl`, each line an OTLP
 *   JSON ExportTraceServiceRequest with hex ids (the same file format as the Python services:
 *   enums by name, e.g. "kind": "SPAN_KIND_SERVER").
 */

import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { context, SpanKind, SpanStatusCode, type Span, type Tracer } from "@opentelemetry/api";
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from "@opentelemetry/core";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler,
  type ReadableSpan, type SpanExporter, type SpanProcessor,
} from "@opentelemetry/sdk-trace-node";

const SPAN_KINDS = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"];
const STATUS_CODES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/** Appends spans to `path` as OTLP JSON lines (ExportTraceServiceRequest with hex ids). */
export class OtlpJsonFileExporter implements SpanExporter {
  constructor(readonly path: string) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      const request = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest(spans) ?? new Uint8Array()).toString("utf8"));
      for (const resourceSpans of request.resourceSpans ?? []) {
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            if (typeof span.kind === "number") span.kind = SPAN_KINDS[span.kind] ?? span.kind;
            if (span.status && typeof span.status.code === "number") span.status.code = STATUS_CODES[span.status.code] ?? span.status.code;
          }
        }
      }
      appendFileSync(this.path, JSON.stringify(request) + "\n");
      done({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export class RpcTracing {
  readonly provider: NodeTracerProvider;
  readonly tracer: Tracer;
  /** Whether calls without traceparent may start a trace here (root ratio > 0). */
  readonly traceRoots: boolean;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(serviceName: string, env: NodeJS.ProcessEnv = process.env) {
    const ratio = Number(env.CASEMESH_TRACE_RATIO ?? "0.01");
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      throw new RangeError(`CASEMESH_TRACE_RATIO must be a number in 0..1 (got ${JSON.stringify(env.CASEMESH_TRACE_RATIO)})`);
    }
    this.traceRoots = ratio > 0;
    const spanProcessors: SpanProcessor[] = [];
    const dir = env.CASEMESH_TRACES_DIR;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      const exporter = new OtlpJsonFileExporter(join(dir, `${serviceName}-${process.pid}.otlp.jsonl`));
      spanProcessors.push(new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500 }));
    }
    this.provider = new NodeTracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ "service.name": serviceName })),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
      spanProcessors,
    });
    this.tracer = this.provider.getTracer("casemesh.services.idgen.node");
  }

  /** The SERVER span of a call to `fullMethod` (`/pkg.Service/Method`), or null when nothing would be sampled. */
  serverSpan(fullMethod: string, traceparent: string | undefined, tracestate: string | undefined): Span | null {
    if (traceparent === undefined && !this.traceRoots) return null;
    const carrier: Record<string, string> = {};
    if (traceparent !== undefined) carrier.traceparent = traceparent;
    if (tracestate !== undefined) carrier.tracestate = tracestate;
    const parent = this.propagator.extract(context.active(), carrier, {
      get: (c: Record<string, string>, key: string) => c[key],
      keys: (c: Record<string, string>) => Object.keys(c),
    });
    const name = fullMethod.replace(/^\//, "");
    const cut = name.lastIndexOf("/");
    return this.tracer.startSpan(name, {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": name.slice(0, cut), "rpc.method": name.slice(cut + 1) },
    }, parent);
  }

  /** Record the gRPC status `code` (its name `codeName`) on `span` and end it. */
  static end(span: Span | null, code: number, codeName: string): void {
    if (span === null) return;
    span.setAttribute("rpc.grpc.status_code", code);
    if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: codeName });
    span.end();
  }

  /** Export what is buffered and stop. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

