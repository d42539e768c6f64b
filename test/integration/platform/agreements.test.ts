import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LtError } from '../../../infra/errors.ts';
import { credentialsUnder } from '../../../infra/http/principal-auth.ts';
import { checkAgreementStep } from '../../../platform/access/agreement-roles.ts';
import { createHttpServer } from '../../../infra/http/server.ts';
import { newPassword, readCredential, writeCredential } from '../../../infra/security/principals.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import {
  AGREEMENT_CHANNEL,
  AgreementStore,
  isActive,
  registerAgreementRoutes,
  SYSTEM_ACTOR,
  type AgreementInput,
  type AgreementProblem,
} from '../../../platform/agreements/index.ts';
import { sampleAgreements } from '../../../cli/commands/agreement.ts';
import { loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import { log, testPool } from '../../helpers/services.ts';

const dictionary = loadDictionary();
const HOUR = 3_600_000;

function newId(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** UBND-HN receives Hà Nội citizens (DOMAIN.md sample), under a fresh id. */
function hanoiCitizens(overrides: Partial<AgreementInput> = {}): AgreementInput {
  return {
    id: newId(),
    subscriber: 'UBND-HN',
    dataset: 'population.citizen',
    fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'province_code', 'commune_code'],
    filter: 'province_code == "01"',
    purpose: 'local administrative procedures',
    legalBasis: 'Decree 278/2025/ND-CP, sharing method (b)',
    ...overrides,
  };
}

/** The error `work` throws; fails the test when it throws nothing. */
async function failure(work: () => Promise<unknown>): Promise<LtError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof LtError) return error;
    throw error;
  }
  throw new Error('expected an LtError, but the call succeeded');
}

function problemsOf(error: LtError): AgreementProblem[] {
  return (error.details.problems ?? []) as AgreementProblem[];
}

let pool: Pool;
let store: AgreementStore;

beforeAll(async () => {
  ({ pool } = await testPool());
  await migrate(pool, 'platform');
  store = new AgreementStore(pool, dictionary);
});

describe('creating an agreement', () => {
  it('records a valid request as requested, not active, revision 1, with a canonical filter', async () => {
    const input = hanoiCitizens({ filter: 'province_code=="01"' });
    const agreement = await store.create(input, 'TTDLQG:operator');
    expect(agreement).toMatchObject({
      id: input.id,
      subscriber: 'UBND-HN',
      dataset: 'population.citizen',
      status: 'requested',
      statusReason: null,
      onEnd: 'purge',
      revision: 1,
      filterText: 'province_code == "01"',
      filter: { kind: 'compare', path: ['province_code'], op: '==', value: '01' },
      validTo: null,
    });
    expect(isActive(agreement)).toBe(false);
    expect(await store.get(input.id)).toEqual(agreement);
  });

  it('refuses a filter that does not parse, naming the position of the problem', async () => {
    const error = await failure(() =>
      store.create(hanoiCitizens({ filter: 'province_code = "01"' }), 'TTDLQG:operator'),
    );
    expect(error.code).toBe('LT_AGREEMENT_INVALID');
    const [problem] = problemsOf(error);
    expect(problem).toMatchObject({ field: 'filter', position: 14 });
    expect(problem?.message).toMatch(/^at 14: "=" is not an operator/);
    expect(error.message).toContain('filter: at 14:');
  });

  it('refuses a filter that does not fit the dataset, at the offending value', async () => {
    const filter = 'province_code == "01" and gender == "X"';
    const error = await failure(() => store.create(hanoiCitizens({ filter }), 'TTDLQG:operator'));
    expect(problemsOf(error)).toEqual([
      expect.objectContaining({ field: 'filter', position: filter.indexOf('"X"') }),
    ]);
    expect(problemsOf(error)[0]?.message).toContain('gender code list');
  });

  it('refuses a filter on a field the agreement does not share (it would leak that field), and an update that stops sharing a field its filter tests', async () => {
    const leaking = await failure(() =>
      store.create(
        hanoiCitizens({ fields: ['full_name'], filter: 'ethnicity == "01" and province_code == "01"' }),
        'UBND-HN:clerk',
      ),
    );
    expect(leaking.code).toBe('LT_AGREEMENT_INVALID');
    expect(problemsOf(leaking)).toEqual([
      expect.objectContaining({
        field: 'filter',
        message: expect.stringMatching(
          /tests "ethnicity", "province_code", which the agreement does not share/,
        ),
      }),
    ]);
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const narrowing = await failure(() => store.update(id, { fields: ['full_name'] }, 'UBND-HN:clerk'));
    expect(problemsOf(narrowing)).toEqual([
      expect.objectContaining({ field: 'filter', message: expect.stringContaining('"province_code"') }),
    ]);
    expect((await store.get(id)).fields).toContain('province_code');
  });

  it('refuses a field the dataset does not have, naming it', async () => {
    const error = await failure(() =>
      store.create(hanoiCitizens({ fields: ['personal_id', 'salary'], filter: 'true' }), 'TTDLQG:operator'),
    );
    expect(error.code).toBe('LT_AGREEMENT_INVALID');
    expect(problemsOf(error)).toEqual([
      expect.objectContaining({
        field: 'fields',
        message: expect.stringContaining('unknown field "salary"'),
      }),
    ]);
  });

  it('refuses an agreement whose subscriber owns the dataset', async () => {
    const error = await failure(() => store.create(hanoiCitizens({ subscriber: 'BCA' }), 'TTDLQG:operator'));
    expect(problemsOf(error)).toEqual([
      expect.objectContaining({
        field: 'subscriber',
        message: expect.stringContaining('BCA owns population.citizen'),
      }),
    ]);
  });

  it('refuses an unknown subscriber and an unknown dataset together', async () => {
    const error = await failure(() =>
      store.create(hanoiCitizens({ subscriber: 'UBND-XX', dataset: 'population.pets' }), 'TTDLQG:operator'),
    );
    expect(problemsOf(error).map((problem) => problem.field)).toEqual(['subscriber', 'dataset']);
  });

  it('refuses a bad id, an empty purpose and a missing legal basis, each by name', async () => {
    const error = await failure(() =>
      store.create(
        { ...hanoiCitizens({ id: 'UBND_HN', purpose: '  ' }), legalBasis: undefined as unknown as string },
        'TTDLQG:operator',
      ),
    );
    expect(
      problemsOf(error)
        .map((problem) => problem.field)
        .sort(),
    ).toEqual(['id', 'legalBasis', 'purpose']);
  });

  it('refuses a validity that ends before it starts', async () => {
    const error = await failure(() =>
      store.create(
        hanoiCitizens({ validFrom: '2027-06-01', validTo: '2027-01-01T00:00:00+07:00' }),
        'TTDLQG:operator',
      ),
    );
    expect(problemsOf(error)).toEqual([
      expect.objectContaining({
        field: 'validTo',
        message: expect.stringContaining('must be after validFrom'),
      }),
    ]);
  });

  it('always shares the key field, in the dataset’s order, without repeats', async () => {
    const agreement = await store.create(
      hanoiCitizens({ fields: ['commune_code', 'full_name', 'full_name'], filter: 'true' }),
      'TTDLQG:operator',
    );
    expect(agreement.fields).toEqual(['personal_id', 'full_name', 'commune_code']);
    const updated = await store.update(agreement.id, { fields: ['birth_date'] }, 'TTDLQG:operator');
    expect(updated.fields).toEqual(['personal_id', 'birth_date']);
  });

  it('refuses a second agreement with the same id', async () => {
    const input = hanoiCitizens();
    await store.create(input, 'TTDLQG:operator');
    const error = await failure(() => store.create({ ...input, subscriber: 'BHXH' }, 'TTDLQG:operator'));
    expect(error.code).toBe('LT_AGREEMENT_EXISTS');
    expect((await store.get(input.id)).subscriber).toBe('UBND-HN');
  });

  it('reads a calendar date as midnight in Vietnam', async () => {
    const agreement = await store.create(
      hanoiCitizens({ validFrom: '2026-01-01', validTo: '2099-01-01' }),
      'TTDLQG:operator',
    );
    expect(agreement.validFrom.toISOString()).toBe('2025-12-31T17:00:00.000Z');
  });
});

describe('the life of an agreement', () => {
  it('is active only while approved: approve, suspend, resume, revoke', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const approved = await store.approve(id, 'BCA:approver');
    expect(approved.status).toBe('approved');
    expect(isActive(approved)).toBe(true);

    const suspended = await store.suspend(id, 'Agent Node under security review', 'TTDLQG:operator');
    expect(suspended).toMatchObject({
      status: 'suspended',
      statusReason: 'Agent Node under security review',
    });
    expect(isActive(suspended)).toBe(false);

    const resumed = await store.resume(id, 'TTDLQG:operator');
    expect(resumed).toMatchObject({ status: 'approved', statusReason: null });
    expect(isActive(resumed)).toBe(true);

    const revoked = await store.revoke(
      id,
      'the procedure moved to the national portal',
      'BCA:approver',
      'retain',
    );
    expect(revoked).toMatchObject({ status: 'revoked', onEnd: 'retain' });
    expect(isActive(revoked)).toBe(false);
  });

  it('expires approved and suspended agreements once validTo has passed, and only those', async () => {
    const validTo = new Date(Date.now() + HOUR);
    const running = await store.create(hanoiCitizens({ validTo }), 'UBND-HN:clerk');
    const paused = await store.create(hanoiCitizens({ validTo }), 'UBND-HN:clerk');
    const waiting = await store.create(hanoiCitizens({ validTo }), 'UBND-HN:clerk');
    const later = await store.create(
      hanoiCitizens({ validTo: new Date(Date.now() + 10 * HOUR) }),
      'UBND-HN:clerk',
    );
    await store.approve(running.id, 'BCA:approver');
    await store.approve(paused.id, 'BCA:approver');
    await store.suspend(paused.id, 'review', 'BCA:approver');
    await store.approve(later.id, 'BCA:approver');
    const ours = new Set([running.id, paused.id, waiting.id, later.id]);

    expect((await store.expireDue(new Date(validTo.getTime() - 1))).filter((a) => ours.has(a.id))).toEqual(
      [],
    );
    const when = new Date(validTo.getTime() + 1);
    const expired = (await store.expireDue(when)).filter((agreement) => ours.has(agreement.id));
    expect(expired.map((agreement) => agreement.id).sort()).toEqual([running.id, paused.id].sort());
    expect(expired.every((agreement) => agreement.status === 'expired' && !isActive(agreement, when))).toBe(
      true,
    );
    expect((await store.get(waiting.id)).status).toBe('requested');
    expect(isActive(await store.get(later.id), when)).toBe(true);

    const [, , , expiry] = await store.events(paused.id);
    expect(expiry).toMatchObject({
      action: 'expire',
      actor: SYSTEM_ACTOR,
      detail: { from: 'suspended', to: 'expired' },
    });
  });

  it('refuses a refusal without a written reason, and changes nothing', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const error = await failure(() => store.refuse(id, '   ', 'BCA:approver'));
    expect(error.code).toBe('LT_AGREEMENT_INVALID');
    expect(problemsOf(error)).toEqual([
      expect.objectContaining({ field: 'reason', message: expect.stringContaining('cite its legal basis') }),
    ]);
    expect((await store.get(id)).status).toBe('requested');
    expect((await store.events(id)).map((event) => event.action)).toEqual(['create']);

    const refused = await store.refuse(
      id,
      'the stated purpose is not covered by the cited legal basis (Data Law 60/2024/QH15)',
      'BCA:approver',
    );
    expect(refused).toMatchObject({ status: 'refused', statusReason: expect.stringContaining('Data Law') });
  });

  it('refuses an illegal transition, naming the current status and the allowed next steps', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');

    const resume = await failure(() => store.resume(id, 'BCA:approver'));
    expect(resume.code).toBe('LT_AGREEMENT_TRANSITION');
    expect(resume.message).toContain('it is approved');
    expect(resume.message).toContain('suspend, revoke');
    expect(resume.details).toMatchObject({
      status: 'approved',
      action: 'resume',
      allowed: ['suspend', 'revoke', 'expire'],
    });

    await store.revoke(id, 'ended', 'BCA:approver');
    const approve = await failure(() => store.approve(id, 'BCA:approver'));
    expect(approve.code).toBe('LT_AGREEMENT_TRANSITION');
    expect(approve.message).toContain('it is revoked');
    expect(approve.message).toContain('revoked is final');
    const update = await failure(() => store.update(id, { fields: ['full_name'] }, 'BCA:approver'));
    expect(update.code).toBe('LT_AGREEMENT_TRANSITION');
    expect((await store.get(id)).status).toBe('revoked');
  });

  it('answers LT_AGREEMENT_UNKNOWN for an id that does not exist', async () => {
    expect((await failure(() => store.approve('no-such-agreement', 'BCA:approver'))).code).toBe(
      'LT_AGREEMENT_UNKNOWN',
    );
    expect((await failure(() => store.events('no-such-agreement'))).code).toBe('LT_AGREEMENT_UNKNOWN');
    expect(await store.find('no-such-agreement')).toBeUndefined();
  });

  it('checks the agreement against the dictionary as it is at approval', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const citizen = dictionary.datasets.get('population.citizen')!;
    const withoutGender: Dictionary = {
      ...dictionary,
      datasets: new Map([
        ...dictionary.datasets,
        [
          'population.citizen',
          { ...citizen, fields: citizen.fields.filter((field) => field.name !== 'gender') },
        ],
      ]),
    };
    const error = await failure(() => new AgreementStore(pool, withoutGender).approve(id, 'BCA:approver'));
    expect(error.code).toBe('LT_AGREEMENT_INVALID');
    expect(problemsOf(error)[0]?.message).toContain('unknown field "gender"');
    expect((await store.get(id)).status).toBe('requested');
  });

  it('lists agreements by status, dataset and subscriber', async () => {
    const parcel = await store.create(
      hanoiCitizens({
        dataset: 'land.parcel',
        fields: ['parcel_id', 'commune_code', 'area_m2'],
        filter: 'commune_code in ["00004", "00008"]',
        subscriber: 'UBND-HCM',
      }),
      'UBND-HCM:clerk',
    );
    await store.approve(parcel.id, 'BNNMT:approver');
    const found = await store.list({ status: 'approved', dataset: 'land.parcel', subscriber: 'UBND-HCM' });
    expect(found.map((agreement) => agreement.id)).toContain(parcel.id);
    expect(
      found.every((agreement) => agreement.dataset === 'land.parcel' && agreement.status === 'approved'),
    ).toBe(true);
    expect((await store.list({ status: 'refused', dataset: 'land.parcel' })).map((a) => a.id)).not.toContain(
      parcel.id,
    );
  });
});

describe('the sample agreements of DOMAIN.md', () => {
  it('are all valid against the dictionary and approvable, and none is for the NGDB', async () => {
    const samples = sampleAgreements(dictionary);
    expect(samples.map((sample) => sample.id)).toEqual([
      'ubnd-hn-citizen',
      'ubnd-hcm-citizen',
      'bhxh-citizen',
      'btc-citizen',
      'bca-enterprise',
      'ubnd-hn-parcel',
    ]);
    for (const sample of samples) {
      await store.create(sample, 'cli:seed');
      expect(isActive(await store.approve(sample.id, 'cli:seed'))).toBe(true);
    }
    expect(samples.some((sample) => sample.subscriber === 'TTDLQG')).toBe(false);
    expect((await store.get('ubnd-hn-parcel')).filterText).toMatch(/^commune_code in \["00004", /);
  });
});

describe('updating an agreement', () => {
  it('raises the revision when fields or filter change, and not for validTo alone', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');

    const extended = await store.update(id, { validTo: new Date(Date.now() + 100 * HOUR) }, 'BCA:approver');
    expect(extended.revision).toBe(1);
    expect(extended.status).toBe('approved');

    const narrowed = await store.update(id, { fields: ['full_name', 'province_code'] }, 'BCA:approver');
    expect(narrowed).toMatchObject({
      revision: 2,
      fields: ['personal_id', 'full_name', 'province_code'],
      status: 'approved',
    });

    const refiltered = await store.update(id, { filter: 'province_code in ["01", "79"]' }, 'BCA:approver');
    expect(refiltered).toMatchObject({ revision: 3, filterText: 'province_code in ["01", "79"]' });
  });

  it('sends an approved agreement that would share more back for approval; dropping fields does not', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');
    const narrowed = await store.update(
      id,
      { fields: ['full_name', 'gender', 'province_code'] },
      'UBND-HN:clerk',
    );
    expect(narrowed).toMatchObject({ status: 'approved', revision: 2 });

    const widened = await store.update(
      id,
      { fields: ['full_name', 'gender', 'province_code', 'permanent_address'] },
      'UBND-HN:clerk',
    );
    expect(widened).toMatchObject({ status: 'requested', revision: 3 });
    expect(widened.statusReason).toContain('fields added: permanent_address');
    expect(isActive(widened)).toBe(false);
    const [last] = (await store.events(id)).slice(-1);
    expect(last?.detail).toMatchObject({ status: { from: 'approved', to: 'requested' } });

    await store.approve(id, 'BCA:approver');
    await store.suspend(id, 'audit', 'TTDLQG:operator');
    const refiltered = await store.update(id, { filter: 'province_code in ["01", "79"]' }, 'UBND-HN:clerk');
    expect(refiltered).toMatchObject({ status: 'requested', revision: 4 });
    expect(refiltered.statusReason).toContain('changed while suspended (filter changed)');
  });

  it('writes nothing when the change is the same agreement in other words', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const before = await store.get(id);
    const same = await store.update(
      id,
      {
        filter: '  province_code=="01" ',
        fields: ['commune_code', 'gender', 'province_code', 'birth_date', 'full_name'],
      },
      'BCA:approver',
    );
    expect(same).toEqual(before);
    expect((await store.events(id)).map((event) => event.action)).toEqual(['create']);
  });

  it('refuses a bad filter in an update, naming the position, and keeps the old one', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const error = await failure(() =>
      store.update(id, { filter: 'province_code == "01" && true' }, 'BCA:approver'),
    );
    expect(problemsOf(error)).toEqual([expect.objectContaining({ field: 'filter', position: 22 })]);
    expect((await store.get(id)).filterText).toBe('province_code == "01"');
  });

  it('refuses an update with nothing to change', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    expect((await failure(() => store.update(id, {}, 'BCA:approver'))).code).toBe('LT_AGREEMENT_INVALID');
  });
});

describe('decree methods of an agreement', () => {
  it('allows sync alone by default, keeps the methods in order without repeats, and refuses none or an unknown one', async () => {
    const plain = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    expect(plain.methods).toEqual(['sync']);
    const both = await store.create(hanoiCitizens({ methods: ['query', 'sync', 'query'] }), 'UBND-HN:clerk');
    expect((await store.get(both.id)).methods).toEqual(['sync', 'query']);

    const none = await failure(() => store.create(hanoiCitizens({ methods: [] }), 'UBND-HN:clerk'));
    expect(problemsOf(none).map((problem) => problem.field)).toEqual(['methods']);
    const unknown = await failure(() =>
      store.create(hanoiCitizens({ methods: ['email' as 'sync'] }), 'UBND-HN:clerk'),
    );
    expect(problemsOf(unknown)[0]?.field).toBe('methods.0');
  });

  it('sends an approved agreement that gains a method back for approval, and refuses dropping sync', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');
    const widened = await store.update(id, { methods: ['sync', 'query'] }, 'UBND-HN:clerk');
    expect(widened).toMatchObject({ status: 'requested', methods: ['sync', 'query'], revision: 1 });
    expect(widened.statusReason).toContain('methods added: query');

    const dropped = await failure(() => store.update(id, { methods: ['query'] }, 'UBND-HN:clerk'));
    expect(dropped.code).toBe('LT_AGREEMENT_INVALID');
    expect(problemsOf(dropped)[0]?.message).toContain('cannot drop sync');
    expect((await store.get(id)).methods).toEqual(['sync', 'query']);
  });

  it('gives agreements stored before migration 0011 the method sync', async () => {
    const { rows } = await pool.query<{ column_default: string }>(
      `SELECT column_default FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'agreement' AND column_name = 'methods'`,
    );
    expect(rows[0]?.column_default).toContain('{sync}');
  });
});

describe('the audit trail', () => {
  it('holds one row per write, in order, with actor and detail', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');
    await store.suspend(id, 'review', 'TTDLQG:operator');
    await store.resume(id, 'TTDLQG:operator');
    await store.update(id, { fields: ['full_name', 'province_code'] }, 'BCA:approver');
    await store.revoke(id, 'no longer needed', 'BCA:approver', 'retain');

    const events = await store.events(id);
    expect(events.map((event) => [event.action, event.actor])).toEqual([
      ['create', 'UBND-HN:clerk'],
      ['approve', 'BCA:approver'],
      ['suspend', 'TTDLQG:operator'],
      ['resume', 'TTDLQG:operator'],
      ['update', 'BCA:approver'],
      ['revoke', 'BCA:approver'],
    ]);
    expect(events.map((event) => event.seq)).toEqual(
      [...events.map((event) => event.seq)].sort((a, b) => a - b),
    );
    expect(events[0]?.detail).toMatchObject({ subscriber: 'UBND-HN', filter: 'province_code == "01"' });
    expect(events[2]?.detail).toEqual({ from: 'approved', to: 'suspended', reason: 'review' });
    expect(events[4]?.detail).toMatchObject({
      changed: { fields: { to: ['personal_id', 'full_name', 'province_code'] } },
      revision: { from: 1, to: 2 },
    });
    expect(events[5]?.detail).toMatchObject({
      reason: 'no longer needed',
      onEnd: { from: 'purge', to: 'retain' },
    });
  });

  it('cannot be rewritten or deleted', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await expect(
      pool.query(`UPDATE agreement_event SET actor = 'someone else' WHERE agreement_id = $1`, [id]),
    ).rejects.toThrow(/append-only/);
    await expect(pool.query('DELETE FROM agreement_event WHERE agreement_id = $1', [id])).rejects.toThrow(
      /append-only/,
    );
    expect((await store.events(id))[0]?.actor).toBe('UBND-HN:clerk');
  });

  it('writes no audit row and no agreement when a write fails', async () => {
    const input = hanoiCitizens({ filter: 'nope == 1' });
    await failure(() => store.create(input, 'UBND-HN:clerk'));
    const { rows } = await pool.query(
      'SELECT count(*)::int AS n FROM agreement_event WHERE agreement_id = $1',
      [input.id],
    );
    expect(rows[0]).toEqual({ n: 0 });
    expect(await store.find(input.id)).toBeUndefined();
  });
});

describe('change notification', () => {
  it(`sends the agreement id on ${AGREEMENT_CHANNEL} when an agreement is created and when it changes`, async () => {
    const input = hanoiCitizens();
    const seen: string[] = [];
    let wake: () => void = () => undefined;
    const stop = await store.watch((id) => {
      if (id !== input.id) return;
      seen.push(id);
      wake();
    });
    try {
      const next = (count: number): Promise<void> =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`saw ${seen.length} notifications, wanted ${count}`)),
            10_000,
          );
          wake = () => {
            if (seen.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          };
          wake();
        });
      await store.create(input, 'UBND-HN:clerk');
      await next(1);
      await store.approve(input.id, 'BCA:approver');
      await next(2);
      expect(seen).toEqual([input.id, input.id]);
    } finally {
      await stop();
    }
  });
});

describe('the HTTP admin API', () => {
  const app = createHttpServer(log);
  // principals with credentials of their own, as `lienthong credentials issue` writes them
  const home = mkdtempSync(join(tmpdir(), 'lt-agreement-api-'));
  const basic = (principal: string): Record<string, string> => {
    const password = readCredential(home, principal)?.password ?? newPassword();
    return { authorization: `Basic ${Buffer.from(`${principal}:${password}`).toString('base64')}` };
  };
  for (const principal of ['agency.UBND-HN', 'agency.BCA', 'agency.BHXH', 'lt-operator'])
    writeCredential(home, { principal, password: newPassword(), issuedAt: new Date().toISOString() });
  const hn = basic('agency.UBND-HN'); // the subscriber of hanoiCitizens()
  const bca = basic('agency.BCA'); // the owner of population.citizen
  const bhxh = basic('agency.BHXH'); // neither
  const operator = basic('lt-operator');
  beforeAll(() => {
    registerAgreementRoutes(app, store, { check: credentialsUnder(home), dictionary });
  });
  afterAll(async () => {
    await app.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('creates with 201 and a Location, approves, lists and shows events', async () => {
    const input = hanoiCitizens({ validTo: '2099-01-01T00:00:00+07:00' });
    const created = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: hn,
      payload: input,
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers.location).toBe(`/v1/agreements/${input.id}`);
    expect(created.json()).toMatchObject({
      id: input.id,
      status: 'requested',
      validTo: '2098-12-31T17:00:00.000Z',
    });

    const approved = await app.inject({
      method: 'POST',
      url: `/v1/agreements/${input.id}/approve`,
      headers: bca,
    });
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ status: 'approved' });

    const listed = await app.inject({
      method: 'GET',
      url: '/v1/agreements?status=approved&subscriber=UBND-HN',
      headers: bhxh,
    });
    expect(listed.statusCode).toBe(200);
    expect((listed.json() as { agreements: { id: string }[] }).agreements.map((a) => a.id)).toContain(
      input.id,
    );

    const shown = await app.inject({ method: 'GET', url: `/v1/agreements/${input.id}`, headers: bhxh });
    expect(shown.json()).toMatchObject({
      id: input.id,
      status: 'approved',
      filterText: 'province_code == "01"',
    });

    const events = await app.inject({
      method: 'GET',
      url: `/v1/agreements/${input.id}/events`,
      headers: operator,
    });
    // the audit trail names the authenticated principals, not what a caller claimed
    expect((events.json() as { events: { action: string; actor: string }[] }).events).toEqual([
      expect.objectContaining({ action: 'create', actor: 'agency.UBND-HN' }),
      expect.objectContaining({ action: 'approve', actor: 'agency.BCA' }),
    ]);
  });

  it('answers 422 with the filter position for a bad filter', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: hn,
      payload: hanoiCitizens({ filter: 'province_code == 01' }),
    });
    expect(response.statusCode).toBe(422);
    const body = response.json() as {
      error: string;
      message: string;
      details: { problems: AgreementProblem[] };
    };
    expect(body.error).toBe('LT_AGREEMENT_INVALID');
    expect(body.details.problems[0]).toMatchObject({ field: 'filter', position: 17 });
    expect(body.message).toContain('at 17:');
  });

  it('answers 401 without credentials or with a wrong password, to reads too, and writes nothing', async () => {
    const input = hanoiCitizens();
    const anonymous = await app.inject({ method: 'POST', url: '/v1/agreements', payload: input });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Basic realm="lienthong"');
    expect(anonymous.json()).toMatchObject({ error: 'LT_UNAUTHORIZED' });
    const wrong = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: { authorization: `Basic ${Buffer.from('agency.UBND-HN:guess').toString('base64')}` },
      payload: input,
    });
    expect(wrong.statusCode).toBe(401);
    // the old X-Lienthong-Actor header is no identity
    const claimed = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: { 'x-lienthong-actor': 'TTDLQG:operator' },
      payload: input,
    });
    expect(claimed.statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/agreements' })).statusCode).toBe(401);
    expect(await store.find(input.id)).toBeUndefined();
  });

  it('lets only the owner decide, never on its own request, and only an operator suspend (403 otherwise)', async () => {
    const input = hanoiCitizens();
    const forOther = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: bhxh,
      payload: input,
    });
    expect([forOther.statusCode, forOther.json().error]).toEqual([403, 'LT_FORBIDDEN']);
    expect(forOther.json().message).toContain('only the subscribing agency (agency.UBND-HN)');
    expect(await store.find(input.id)).toBeUndefined();

    await app.inject({ method: 'POST', url: '/v1/agreements', headers: hn, payload: input });
    for (const [who, headers] of [
      ['the subscriber', hn],
      ['another agency', bhxh],
      ['an operator', operator],
    ] as const) {
      const approve = await app.inject({
        method: 'POST',
        url: `/v1/agreements/${input.id}/approve`,
        headers,
      });
      expect([who, approve.statusCode]).toEqual([who, 403]);
    }
    const suspendByAgency = await app.inject({
      method: 'POST',
      url: `/v1/agreements/${input.id}/suspend`,
      headers: bca,
      payload: { reason: 'x' },
    });
    expect(suspendByAgency.statusCode).toBe(403);
    expect((await store.get(input.id)).status).toBe('requested'); // nothing refused changed anything

    // self-approval: an agency asking for its own dataset is refused when it asks (the store's rule) …
    const own = { ...hanoiCitizens(), subscriber: 'BCA' };
    const requested = await app.inject({ method: 'POST', url: '/v1/agreements', headers: bca, payload: own });
    expect([requested.statusCode, requested.json().error]).toEqual([422, 'LT_AGREEMENT_INVALID']);
    // … and the role check refuses the approval too, should such a request exist
    expect(() =>
      checkAgreementStep(
        'agency.BCA',
        'approve',
        { subscriber: 'BCA', dataset: 'population.citizen' },
        dictionary,
      ),
    ).toThrow(/nobody approves or refuses their own request/);
  });

  it('answers 404, 409 and 422 with their LT codes', async () => {
    const unknown = await app.inject({
      method: 'GET',
      url: '/v1/agreements/no-such-agreement',
      headers: hn,
    });
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'LT_AGREEMENT_UNKNOWN']);

    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    const resume = await app.inject({
      method: 'POST',
      url: `/v1/agreements/${id}/resume`,
      headers: operator,
    });
    expect([resume.statusCode, resume.json().error]).toEqual([409, 'LT_AGREEMENT_TRANSITION']);
    expect(resume.json().message).toContain('it is requested');

    const again = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: hn,
      payload: hanoiCitizens({ id }),
    });
    expect([again.statusCode, again.json().error]).toEqual([409, 'LT_AGREEMENT_EXISTS']);

    const refuse = await app.inject({
      method: 'POST',
      url: `/v1/agreements/${id}/refuse`,
      headers: bca,
      payload: {},
    });
    expect([refuse.statusCode, refuse.json().error]).toEqual([422, 'LT_AGREEMENT_INVALID']);
    expect(refuse.json().details.problems[0].field).toBe('reason');

    const refused = await app.inject({
      method: 'POST',
      url: `/v1/agreements/${id}/refuse`,
      headers: bca,
      payload: { reason: 'Decree 194/2025 art. 16: purpose outside the legal basis' },
    });
    expect(refused.json()).toMatchObject({ status: 'refused' });
  });

  it('answers 400 naming the field, not 500 "invalid agency code null", to a request whose subscriber is null or no agency code', async () => {
    for (const subscriber of [null, 42, 'ubnd-hn']) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/agreements',
        headers: hn,
        payload: { ...hanoiCitizens(), subscriber },
      });
      expect([response.statusCode, response.json().error]).toEqual([400, 'LT_MALFORMED_INPUT']);
      expect(response.json().details.problems).toEqual([expect.objectContaining({ field: 'subscriber' })]);
      expect(response.json().message).toContain('subscriber');
    }
    const noDataset = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: hn,
      payload: { ...hanoiCitizens(), dataset: undefined },
    });
    expect([noDataset.statusCode, noDataset.json().details.problems[0].field]).toEqual([400, 'dataset']);
    // a body of the right shape from someone who is not the subscriber is still the role check's 403
    const other = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: bhxh,
      payload: hanoiCitizens(),
    });
    expect(other.statusCode).toBe(403);
  });

  it('answers 400 LT_MALFORMED_INPUT to a body that is not JSON and to an unknown status filter', async () => {
    const broken = await app.inject({
      method: 'POST',
      url: '/v1/agreements',
      headers: { ...hn, 'content-type': 'application/json' },
      payload: '{"id": ',
    });
    expect([broken.statusCode, broken.json().error]).toEqual([400, 'LT_MALFORMED_INPUT']);
    const status = await app.inject({ method: 'GET', url: '/v1/agreements?status=pending', headers: hn });
    expect([status.statusCode, status.json().error]).toEqual([400, 'LT_MALFORMED_INPUT']);
  });

  it('suspends, resumes, updates and revokes over HTTP', async () => {
    const { id } = await store.create(hanoiCitizens(), 'UBND-HN:clerk');
    await store.approve(id, 'BCA:approver');
    const post = (step: string, headers: Record<string, string>, payload?: object) =>
      app.inject({
        method: 'POST',
        url: `/v1/agreements/${id}/${step}`,
        headers,
        ...(payload ? { payload } : {}),
      });
    expect((await post('suspend', operator, { reason: 'review' })).json()).toMatchObject({
      status: 'suspended',
    });
    expect((await post('resume', operator)).json()).toMatchObject({ status: 'approved' });
    const patched = await app.inject({
      method: 'PATCH',
      url: `/v1/agreements/${id}`,
      headers: bca,
      payload: { fields: ['full_name', 'birth_date', 'province_code'] },
    });
    expect(patched.json()).toMatchObject({
      revision: 2,
      fields: ['personal_id', 'full_name', 'birth_date', 'province_code'],
    });
    expect((await post('revoke', bca, { reason: 'ended', onEnd: 'retain' })).json()).toMatchObject({
      status: 'revoked',
      onEnd: 'retain',
    });
    const bad = await post('revoke', bca, { reason: 'again', onEnd: 'shred' });
    expect(bad.statusCode).toBe(400);
  });
});
