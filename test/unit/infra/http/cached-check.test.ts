import { describe, expect, it } from 'vitest';
import { cachedCheck, type PasswordCheck } from '../../../../infra/http/principal-auth.ts';

/** A credential store the test changes, counting how often it is asked. */
function store(): {
  check: PasswordCheck;
  set: (principal: string, password?: string) => void;
  asked: () => number;
} {
  const passwords = new Map<string, string>();
  let asked = 0;
  return {
    check: (principal, password) => {
      asked += 1;
      return passwords.get(principal) === password;
    },
    set: (principal, password) => {
      if (password === undefined) passwords.delete(principal);
      else passwords.set(principal, password);
    },
    asked: () => asked,
  };
}

describe('cachedCheck', () => {
  it('asks the store once per principal and password within the TTL', () => {
    const credentials = store();
    credentials.set('agency.UBND-HN', 'secret-1');
    let now = 0;
    const check = cachedCheck(credentials.check, { ttlMs: 1_000, now: () => now });
    for (let i = 0; i < 5; i++) expect(check('agency.UBND-HN', 'secret-1')).toBe(true);
    expect(credentials.asked()).toBe(1);
    now = 1_000;
    expect(check('agency.UBND-HN', 'secret-1')).toBe(true);
    expect(credentials.asked()).toBe(2);
  });

  it('refuses a revoked credential once the TTL since its check has passed, however often it was used meanwhile', () => {
    const credentials = store();
    credentials.set('agency.UBND-HN', 'secret-1');
    let now = 0;
    const check = cachedCheck(credentials.check, { ttlMs: 1_000, now: () => now });
    expect(check('agency.UBND-HN', 'secret-1')).toBe(true);
    credentials.set('agency.UBND-HN'); // revoked
    for (now = 100; now < 1_000; now += 100) expect(check('agency.UBND-HN', 'secret-1')).toBe(true);
    now = 1_000;
    expect(check('agency.UBND-HN', 'secret-1')).toBe(false);
  });

  it('never caches a refusal: a wrong password is always asked, a new credential works at once', () => {
    const credentials = store();
    const check = cachedCheck(credentials.check, { ttlMs: 60_000, now: () => 0 });
    expect(check('agency.BHXH', 'secret-2')).toBe(false);
    credentials.set('agency.BHXH', 'secret-2'); // issued
    expect(check('agency.BHXH', 'secret-2')).toBe(true);
    expect(check('agency.BHXH', 'wrong')).toBe(false);
    expect(check('agency.BHXH', 'wrong')).toBe(false);
    expect(credentials.asked()).toBe(4);
  });

  it('keeps a principal’s and another principal’s passwords apart', () => {
    const credentials = store();
    credentials.set('agency.BHXH', 'secret-3');
    const check = cachedCheck(credentials.check, { ttlMs: 60_000, now: () => 0 });
    expect(check('agency.BHXH', 'secret-3')).toBe(true);
    expect(check('agency.BTC', 'secret-3')).toBe(false);
    expect(check('agency.BHX', 'Hsecret-3')).toBe(false); // the separator keeps name and password apart
  });

  it('asks the store every time with a TTL of 0', () => {
    const credentials = store();
    credentials.set('agency.BTP', 'secret-4');
    const check = cachedCheck(credentials.check, { ttlMs: 0 });
    expect(check('agency.BTP', 'secret-4')).toBe(true);
    expect(check('agency.BTP', 'secret-4')).toBe(true);
    expect(credentials.asked()).toBe(2);
  });
});
