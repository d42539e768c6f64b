import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { LtError } from '../../infra/errors.ts';

/** What a cursor is bound to: a cursor of one query is refused by any other. */
export interface CursorScope {
  caller: string;
  agreement: string;
  dataset: string;
  /** The caller's filter in canonical text (`true` without one). */
  filter: string;
  /** The fields answered, sorted. */
  fields: readonly string[];
  /** ISO time, or null for the current state. */
  asOf: string | null;
}

/*
 * Cursor grammar (opaque to callers):
 *   cursor  = payload "." mac ;
 *   payload = base64url( JSON { "v": 1, "after": <last key read>, "scope": <hex sha256 of the scope> } ) ;
 *   mac     = base64url( HMAC-SHA256(secret, payload) ) ;
 * The scope hash binds it to caller, agreement, dataset, filter, fields and asOf; the MAC makes it unforgeable.
 */

function scopeHash(scope: CursorScope): string {
  const canonical = JSON.stringify([
    scope.caller,
    scope.agreement,
    scope.dataset,
    scope.filter,
    [...scope.fields].sort(),
    scope.asOf,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

/** A cursor that resumes `scope` after key `after`. */
export function issueCursor(secret: Buffer, scope: CursorScope, after: string): string {
  const payload = Buffer.from(JSON.stringify({ v: 1, after, scope: scopeHash(scope) })).toString('base64url');
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

function refuse(why: string): LtError {
  return new LtError('LT_CURSOR_INVALID', `the cursor is refused: ${why}`, {
    hint: 'pass the `next` of the previous page of this same query unchanged, or start again without a cursor',
  });
}

/** The key to resume after; LT_CURSOR_INVALID when the cursor was forged, altered or issued for another query. */
export function readCursor(secret: Buffer, scope: CursorScope, cursor: string): string {
  const [payload, given, ...rest] = cursor.split('.');
  if (payload === undefined || given === undefined || rest.length > 0) throw refuse('it is malformed');
  const expected = mac(secret, payload);
  const actual = Buffer.from(given, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
    throw refuse('it was not issued by this platform, or was altered');
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw refuse('it is malformed');
  }
  const { v, after, scope: bound } = (body ?? {}) as { v?: unknown; after?: unknown; scope?: unknown };
  if (v !== 1 || typeof after !== 'string') throw refuse('it is malformed');
  if (bound !== scopeHash(scope))
    throw refuse('it belongs to another query (caller, agreement, dataset, filter, fields or asOf differ)');
  return after;
}
