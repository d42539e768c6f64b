import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LtError } from '../errors.ts';
import { readCredential } from '../security/principals.ts';

/** Says whether `password` is `principal`'s; false for an unknown principal. */
export type PasswordCheck = (principal: string, password: string) => boolean;

/**
 * The principals' own credentials under `<home>/security/credentials/` — the same name and password a principal
 * has on the broker (`lienthong credentials issue|rotate|revoke`), so a rotation or revocation takes effect on HTTP
 * too, at the next request.
 */
export function credentialsUnder(home: string): PasswordCheck {
  return (principal, password) => {
    let known: { password: string } | null;
    try {
      known = readCredential(home, principal);
    } catch {
      return false; // not a principal's name at all
    }
    return sameSecret(known?.password, password);
  };
}

/** How long {@link cachedCheck} trusts a verified credential. */
export interface CachedCheckOptions {
  /**
   * How long a verified (principal, password) pair is accepted without asking `check` again, counted from the
   * check that verified it (not from its last use): a rotated or revoked credential is refused at most this long
   * after the change. 0 caches nothing. @default 1000
   */
  ttlMs?: number;
  /** Most pairs remembered; beyond it the cache starts afresh. @default 10000 */
  maxEntries?: number;
  /** The clock, in milliseconds. @default Date.now */
  now?: () => number;
}

/**
 * `check` with its successes remembered for `ttlMs`, so a busy HTTP service does not read a credential file per
 * request. Only successes are kept, so a newly issued credential works at once and a wrong password is always
 * checked; the cache is keyed by SHA-256 of principal and password, so it holds no secret. A rotation or
 * revocation (`lienthong credentials rotate|revoke`, another process) takes effect within `ttlMs`: an entry is
 * never extended by use.
 */
export function cachedCheck(
  check: PasswordCheck,
  { ttlMs = 1_000, maxEntries = 10_000, now = Date.now }: CachedCheckOptions = {},
): PasswordCheck {
  const verified = new Map<string, number>(); // sha256(principal NUL password) → trusted until
  return (principal, password) => {
    const id = createHash('sha256').update(principal).update('\u0000').update(password).digest('base64');
    const until = verified.get(id);
    if (until !== undefined && until > now()) return true;
    if (until !== undefined) verified.delete(id);
    if (!check(principal, password)) return false;
    if (ttlMs > 0) {
      if (verified.size >= maxEntries) verified.clear();
      verified.set(id, now() + ttlMs);
    }
    return true;
  };
}

/** Whether `given` is the `expected` secret, compared in constant time; false when there is none. */
export function sameSecret(expected: string | undefined, given: string): boolean {
  if (expected === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The realm a 401 names in `WWW-Authenticate`. */
export const REALM = 'Basic realm="lienthong", charset="UTF-8"';

/**
 * The principal an HTTP request authenticates as with HTTP Basic (name = principal, password = its credential),
 * or LT_UNAUTHORIZED saying what is missing. Never says whether the name exists.
 */
export function authenticatedPrincipal(request: FastifyRequest, check: PasswordCheck): string {
  const header = request.headers.authorization;
  const refuse = (why: string): LtError =>
    new LtError('LT_UNAUTHORIZED', why, {
      hint: 'authenticate with HTTP Basic as your principal (agency.<code>, lt-operator, …) and its credential',
    });
  if (typeof header !== 'string' || !header.startsWith('Basic '))
    throw refuse('this API needs HTTP Basic authentication as a principal');
  const decoded = Buffer.from(header.slice('Basic '.length).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1 || decoded.length > 512) throw refuse('the Basic credentials are malformed');
  const principal = decoded.slice(0, colon);
  if (!check(principal, decoded.slice(colon + 1))) throw refuse('unknown principal or wrong password');
  return principal;
}
