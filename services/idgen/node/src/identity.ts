/**
 * Who is calling: the mesh secret and caller tokens, as services/runtime/secrets.py and identity.py
 * define them, so that this server accepts exactly the tokens the Python services send.
 *
 * - The mesh secret: `CASEMESH_SECRET` or `CASEMESH_SECRET_FILE` (exactly one), previous secrets from
 *   `CASEMESH_PREVIOUS_SECRETS_FILE` (one per line, `#` comments); at least 32 characters with 10 distinct.
 * - The service-token key: HKDF-SHA256(secret, no salt, info "casemesh/service-token"), 32 bytes;
 *   its key id: the first 8 hex digits of SHA-256(key).
 * - A caller token (metadata `casemesh-caller`): `v1.<kid>.<path>.<issued_ms>.<mac>`, mac the URL-safe
 *   base64 (no padding) of HMAC-SHA256(key, "casemesh-caller." + everything before the last dot);
 *   accepted from 300 s before issued_ms to 3600 s after it; the identity is
 *   `spiffe://casemesh.local/<path>`. Verified tokens are cached until they expire.
 *
 * Over mTLS the caller's identity is its certificate's one `spiffe://` URI SAN (as verified by the TLS
 * handshake against the mesh CA), and the token is not needed (tlsIdentity).
 */

import { createHash, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export const TRUST_DOMAIN_PREFIX = "spiffe://casemesh.local/";
export const TEST_IDENTITY = TRUST_DOMAIN_PREFIX + "test";
export const CALLER_METADATA_KEY = "casemesh-caller";
export const TOKEN_LIFETIME_S = 3600;
export const CLOCK_SKEW_S = 300;
const MAX_CACHED_TOKENS = 4096;
const MIN_SECRET_CHARS = 32;
const MIN_DISTINCT_CHARS = 10;
const PUBLIC_DEV_SECRET = "casemesh-dev-upload-token-secret";
const PATH_RE = /^[a-z0-9][a-z0-9-]*(\/[a-z0-9][a-z0-9-]*)*$/;
const ISSUED_RE = /^[0-9]{1,16}$/;

/** The mesh secret is missing or unusable; the message names the variable and never the secret. */
export class SecretError extends Error {}

/** A caller token that is malformed, forged, signed with an unknown key, or outside its validity window. */
export class InvalidToken extends Error {}

export function serviceIdentity(name: string): string {
  return `${TRUST_DOMAIN_PREFIX}svc/${name}`;
}

function checkSecret(secret: string, source: string): string {
  if (secret === PUBLIC_DEV_SECRET) {
    throw new SecretError(`${source} is the public development constant ${JSON.stringify(PUBLIC_DEV_SECRET)}; generate a secret with \`openssl rand -hex 32\``);
  }
  const distinct = new Set(secret).size;
  if (secret.length < MIN_SECRET_CHARS || distinct < MIN_DISTINCT_CHARS) {
    throw new SecretError(`${source} is too weak: at least ${MIN_SECRET_CHARS} characters with ${MIN_DISTINCT_CHARS} distinct ones are needed (it has ${secret.length} characters, ${distinct} distinct)`);
  }
  return secret;
}

function readSecretFile(path: string, variable: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new SecretError(`${variable}: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** The current secret and the previous ones, from the environment; SecretError as load_mesh_secret raises it. */
export function loadMeshSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  const value = env.CASEMESH_SECRET;
  const path = env.CASEMESH_SECRET_FILE;
  if (value && path) throw new SecretError("both CASEMESH_SECRET and CASEMESH_SECRET_FILE are set; set only one");
  let current: string;
  if (path) current = checkSecret(readSecretFile(path, "CASEMESH_SECRET_FILE").trim(), `CASEMESH_SECRET_FILE (${path})`);
  else if (value) current = checkSecret(value, "CASEMESH_SECRET");
  else throw new SecretError("no mesh secret: set CASEMESH_SECRET or CASEMESH_SECRET_FILE, the same for every process of the mesh");
  const previous: string[] = [];
  const previousFile = env.CASEMESH_PREVIOUS_SECRETS_FILE;
  if (previousFile) {
    const lines = readSecretFile(previousFile, "CASEMESH_PREVIOUS_SECRETS_FILE").split(/\r?\n/).map((l) => l.trim());
    lines.filter((l) => l && !l.startsWith("#")).forEach((old, i) =>
      previous.push(checkSecret(old, `CASEMESH_PREVIOUS_SECRETS_FILE (${previousFile}) entry ${i + 1}`)));
  }
  return [current, ...previous];
}

/** The 32-byte key of `purpose` under `secret` (HKDF-SHA256, no salt, info "casemesh/PURPOSE"). */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), Buffer.alloc(0), Buffer.from(`casemesh/${purpose}`), 32));
}

/** The key id of `key`: the first 8 hex digits of its SHA-256. */
export function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

function mac(key: Buffer, signed: string): string {
  return createHmac("sha256", key).update("casemesh-caller." + signed, "ascii").digest("base64url");
}

/** Checks caller tokens against the service-token keys of every accepted secret. */
export class TokenVerifier {
  private readonly keys = new Map<string, Buffer>();
  private readonly verified = new Map<string, [string, number, number]>(); // token → identity, valid from, until (s)

  constructor(secrets: string[], private readonly clock: () => number = () => Date.now() / 1000) {
    for (const secret of secrets) {
      const key = deriveKey(secret, "service-token");
      this.keys.set(keyId(key), key);
    }
  }

  /** The identity `token` proves now; InvalidToken (its message says why) otherwise. */
  identity(token: string): string {
    const now = this.clock();
    const cached = this.verified.get(token);
    if (cached !== undefined) {
      const [identity, validFrom, validUntil] = cached;
      if (validFrom <= now && now < validUntil) return identity;
      this.verified.delete(token);
      throw new InvalidToken(now >= validUntil ? "caller token expired" : "caller token is from the future");
    }
    const parts = token.split(".");
    if (parts.length !== 5 || parts[0] !== "v1" || !ISSUED_RE.test(parts[3])) {
      throw new InvalidToken("caller token is malformed");
    }
    const [, kid, path, issued, given] = parts;
    const key = this.keys.get(kid);
    if (key === undefined) throw new InvalidToken("caller token is signed with an unknown or retired key");
    if (!/^[\x00-\x7f]*$/.test(token)) throw new InvalidToken("caller token is malformed");
    const expected = Buffer.from(mac(key, token.slice(0, token.length - given.length - 1)), "ascii");
    const actual = Buffer.from(given, "ascii");
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new InvalidToken("caller token signature is invalid");
    }
    if (!PATH_RE.test(path)) throw new InvalidToken("caller token is malformed");
    const issuedS = Number(issued) / 1000;
    const validFrom = issuedS - CLOCK_SKEW_S;
    const validUntil = issuedS + TOKEN_LIFETIME_S;
    if (now >= validUntil) throw new InvalidToken(`caller token expired ${Math.round(now - validUntil)} s ago`);
    if (now < validFrom) throw new InvalidToken("caller token is from the future (check the clocks)");
    if (this.verified.size >= MAX_CACHED_TOKENS) this.verified.clear();
    const identity = TRUST_DOMAIN_PREFIX + path;
    this.verified.set(token, [identity, validFrom, validUntil]);
    return identity;
  }
}

/** A refused call: the gRPC status to answer with and the `caller` label it is counted under. */
export interface Denial {
  code: "PERMISSION_DENIED" | "UNAUTHENTICATED";
  message: string;
  caller: string;
}

/**
 * The per-method check of services/runtime/authorization.py for the methods this server has:
 * `allowed` maps a full method (`/pkg.Service/Method`) to the identities that may call it; a method
 * it does not list is open (health). `allowTestIdentity` (CASEMESH_ALLOW_TEST_IDENTITY=1) lets the
 * test identity call every method.
 */
export class Authorizer {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly allowed: Map<string, Set<string>>,
    readonly allowTestIdentity: boolean,
  ) {}

  /** `null` when the call's caller may call `fullMethod`, else the Denial; `peer` is the mTLS peer's SPIFFE ID. */
  check(fullMethod: string, token: string | undefined, peer: string | null = null): Denial | null {
    const allowed = this.allowed.get(fullMethod);
    if (allowed === undefined) return null;
    const name = fullMethod.replace(/^\//, "");
    if (peer !== null) {
      if (allowed.has(peer) || (this.allowTestIdentity && peer === TEST_IDENTITY)) return null;
      return { code: "PERMISSION_DENIED", caller: peer, message: `${name} may not be called by ${peer}` };
    }
    if (token === undefined) {
      return { code: "PERMISSION_DENIED", caller: "none",
        message: `${name} may not be called by an unidentified caller (an internal method: mesh services only)` };
    }
    let identity: string;
    try {
      identity = this.verifier.identity(token);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      return { code: "UNAUTHENTICATED", caller: "invalid", message: `${name}: ${error.message}` };
    }
    if (allowed.has(identity) || (this.allowTestIdentity && identity === TEST_IDENTITY)) return null;
    return { code: "PERMISSION_DENIED", caller: identity, message: `${name} may not be called by ${identity}` };
  }
}

/**
 * The one `spiffe://` URI SAN of a TLS peer certificate's `subjectaltname` ("DNS:x, URI:spiffe://..."),
 * or null (no certificate, none or several).
 */
export function tlsIdentity(subjectAltName: string | undefined): string | null {
  if (!subjectAltName) return null;
  const found = subjectAltName.split(", ").filter((entry) => entry.startsWith("URI:spiffe://")).map((entry) => entry.slice(4));
  return found.length === 1 ? found[0] : null;
}

/** Whether CASEMESH_ALLOW_TEST_IDENTITY is 1, true or yes. */
export function allowTestIdentityFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return ["1", "true", "yes"].includes((env.CASEMESH_ALLOW_TEST_IDENTITY ?? "").trim().toLowerCase());
}
