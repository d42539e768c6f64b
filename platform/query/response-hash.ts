import { createHash } from 'node:crypto';

/** The response header carrying the hash that binds a response to its request. */
export const RESPONSE_HASH_HEADER = 'x-lienthong-response-hash';

/** What the hash covers of the request. */
export interface HashedRequest {
  method: string;
  /** The path without the query string, as sent (percent-encoding included). */
  path: string;
  /** The query parameters, decoded. */
  query: Record<string, string>;
  /** The authenticated principal. */
  caller: string;
  /** The request body's bytes as received; empty for a GET. */
  body: string;
}

/**
 * The canonical request, one item a line (LF, no trailing LF):
 *
 *   METHOD
 *   path
 *   query    name=value pairs sorted by name, each percent-encoded (encodeURIComponent), joined by "&"
 *   caller   the principal the request authenticated as
 *   sha256 of the request body bytes, lower-case hex (of the empty string for a GET)
 */
export function canonicalRequest(request: HashedRequest): string {
  const query = Object.keys(request.query)
    .sort()
    .map((name) => `${encodeURIComponent(name)}=${encodeURIComponent(request.query[name] ?? '')}`)
    .join('&');
  const body = createHash('sha256').update(request.body).digest('hex');
  return [request.method.toUpperCase(), request.path, query, request.caller, body].join('\n');
}

/**
 * `sha256(canonical request ‖ "\n" ‖ response body bytes)`, lower-case hex: a caller recomputes it from what it
 * sent and what it received, and the audit row keeps it, so either side can show which answer went with which
 * question.
 */
export function responseHash(request: HashedRequest, responseBody: string): string {
  return createHash('sha256')
    .update(canonicalRequest(request))
    .update('\n')
    .update(responseBody)
    .digest('hex');
}
