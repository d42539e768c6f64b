import { timingSafeEqual } from 'node:crypto';
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
