// A TypeScript client of casemesh's URL shortener, built only from the contract: the message types and the
// service descriptor come from protoc-gen-es (buf.gen.yaml), the transport is Connect's gRPC over HTTP/2.
//
// Usage: node client.js HOST:PORT
// Makes three calls and prints what it saw as one JSON object on stdout (tests/interop/test_node_client.py
// checks it): Shorten a URL with a TTL, Resolve the code it got, and a Shorten with a bad URL that the
// server must reject with INVALID_ARGUMENT naming the field. Exits 1 on anything unexpected.
import { create, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  ShortenRequestSchema,
  ShortenResponseSchema,
  UrlShortenerService,
} from "../../../gen/ts/casemesh/urlshortener/v1/urlshortener_pb.js";

const target = process.argv[2];
if (!target) {
  console.error("usage: node client.js HOST:PORT");
  process.exit(2);
}

// Plain-text gRPC (h2c), as casemesh serves on loopback.
const transport = createGrpcTransport({ baseUrl: `http://${target}` });
const client = createClient(UrlShortenerService, transport);
const callOptions = { timeoutMs: 5000 };

const longUrl = `https://example.com/from-typescript/${Date.now()}`;
// int64 fields are bigint in TypeScript; 3600 s = one hour.
const request = create(ShortenRequestSchema, { longUrl, ttlSeconds: 3600n });
const shortened = await client.shorten(request, callOptions);
const resolved = await client.resolve({ code: shortened.code, countryCode: "SE" }, callOptions);

let rejected: { code: string; message: string } | null = null;
try {
  await client.shorten({ longUrl: "not a url" }, callOptions);
} catch (error) {
  const connectError = ConnectError.from(error);
  rejected = { code: Code[connectError.code], message: connectError.rawMessage };
}

console.log(
  JSON.stringify({
    shorten: {
      code: shortened.code,
      expireTime: shortened.expireTime ? timestampDate(shortened.expireTime).toISOString() : null,
      json: toJson(ShortenResponseSchema, shortened),
    },
    resolve: { longUrl: resolved.longUrl, sent: longUrl },
    invalid: rejected,
  }),
);
