import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { issueCursor, readCursor, type CursorScope } from '../../../../platform/query/cursor.ts';
import { canonicalRequest, responseHash } from '../../../../platform/query/response-hash.ts';

const secret = randomBytes(32);
const scope: CursorScope = {
  caller: 'agency.UBND-HN',
  agreement: 'ubnd-hn-citizen-query',
  dataset: 'population.citizen',
  filter: 'true',
  fields: ['full_name', 'personal_id'],
  asOf: null,
};

describe('query cursors', () => {
  it('resume their own query after the key they were issued for', () => {
    expect(readCursor(secret, scope, issueCursor(secret, scope, '001090012345'))).toBe('001090012345');
    // the order the fields are named in does not make another query
    const reordered = { ...scope, fields: ['personal_id', 'full_name'] };
    expect(readCursor(secret, reordered, issueCursor(secret, scope, 'k'))).toBe('k');
  });

  it('are refused by another caller, agreement, dataset, filter, field list or asOf', () => {
    const cursor = issueCursor(secret, scope, 'k');
    for (const other of [
      { caller: 'agency.UBND-HCM' },
      { agreement: 'another' },
      { dataset: 'land.parcel' },
      { filter: 'full_name == "A"' },
      { fields: ['personal_id'] },
      { asOf: '2026-01-01T00:00:00.000Z' },
    ]) {
      expect(() => readCursor(secret, { ...scope, ...other }, cursor)).toThrow(/another query/);
    }
  });

  it('are refused when signed with another secret, altered or malformed', () => {
    const cursor = issueCursor(secret, scope, 'k');
    expect(() => readCursor(randomBytes(32), scope, cursor)).toThrow(/altered/);
    expect(() => readCursor(secret, scope, `x${cursor}`)).toThrow(/LT_CURSOR_INVALID|refused/);
    expect(() => readCursor(secret, scope, 'nodot')).toThrow(/malformed/);
  });
});

describe('the response hash', () => {
  it('binds the body to the request: method, path, sorted query, caller and request body', () => {
    const request = {
      method: 'get',
      path: '/v1/query/population.citizen/001090012345',
      query: { purpose: 'thủ tục', asOf: '2026-01-01T00:00:00Z' },
      caller: 'agency.UBND-HN',
      body: '',
    };
    expect(canonicalRequest(request)).toBe(
      'GET\n/v1/query/population.citizen/001090012345\nasOf=2026-01-01T00%3A00%3A00Z&purpose=th%E1%BB%A7%20t%E1%BB%A5c\n' +
        'agency.UBND-HN\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    const hash = responseHash(request, '{"a":1}');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(responseHash({ ...request, caller: 'agency.BTC' }, '{"a":1}')).not.toBe(hash);
    expect(responseHash(request, '{"a":2}')).not.toBe(hash);
  });
});
