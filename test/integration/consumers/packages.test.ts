import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ensurePlatformSigningKey,
  exportPackage,
  importPackage,
  issueAgencyKey,
  readFrame,
  readRecipientPrivateKey,
  readRecipientPublicKey,
  verifyPackage,
  type ExportOptions,
  type ImportTarget,
  type SigningKey,
  type VerifyOptions,
} from '../../../consumers/packages/index.ts';
import { packageTail } from '../../../consumers/packages/layout.ts';
import { signManifest } from '../../../consumers/packages/seal.ts';
import type { HistoryTable } from '../../../schemas/postgres/history.ts';
import { SinkTable } from '../../../schemas/postgres/table.ts';
import { isLtError, type ErrorCode } from '../../../infra/errors.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { compileFilter, parseFilter } from '../../../platform/agreements/filter.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../../producers/sample/enterprises.ts';
import type { ChangeEvent } from '../../../schemas/envelope/change-event.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { log, testPool } from '../../helpers/services.ts';
import { citizenEvent, createNgdbTables, tableChecksum, writeNgdbEvents } from '../../helpers/ngdb-seed.ts';

const dictionary = loadDictionary();
const dataset = getDataset(dictionary, 'population.citizen');
const CITIZENS = 1_200;
const T1 = new Date('2026-03-01T00:00:00Z');
const T2 = new Date('2026-04-01T00:00:00Z');
const T3 = new Date('2026-05-01T00:00:00Z');

let home: string;
let dir: string;
let signingKey: SigningKey;
let source: Pool;
let history: HistoryTable;
let sourceChecksum: string;
const citizens = sampleCitizens(CITIZENS, 12);

/** Every 10th citizen is updated at T2 (version 2), every 25th deleted at T3 (version 3). */
function sourceEvents(): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  citizens.forEach((citizen, index) => {
    const key = String(citizen.personal_id);
    events.push(citizenEvent(dataset, key, 1, T1, citizen));
    if (index % 10 === 0)
      events.push(
        citizenEvent(dataset, key, 2, T2, { ...citizen, full_name: `${String(citizen.full_name)} B` }),
      );
    if (index % 25 === 0) events.push(citizenEvent(dataset, key, 3, T3, null));
  });
  return events;
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'lt-packages-home-'));
  dir = mkdtempSync(join(tmpdir(), 'lt-packages-'));
  signingKey = ensurePlatformSigningKey(home);
  ({ pool: source } = await testPool());
  history = await createNgdbTables(source, dataset);
  await writeNgdbEvents(source, history, sourceEvents());
  sourceChecksum = await tableChecksum(source, history.current.name, history.keyColumn);
});

let packages = 0;
async function exportTo(options: Partial<ExportOptions> = {}): Promise<string> {
  const out = join(dir, `package-${++packages}.ltpkg`);
  await exportPackage({
    ngdb: source,
    dataset,
    out,
    signingKey,
    createdBy: 'lt-operator',
    pageSize: 500,
    ...options,
  });
  return out;
}

/** What `lienthong import` does: verify everything, then load. */
async function verifyAndImport(
  file: string,
  pool: Pool,
  target: ImportTarget = { kind: 'ngdb' },
  options: Partial<VerifyOptions> & { batchSize?: number; stopAfter?: number } = {},
) {
  const verified = await verifyPackage({
    file,
    dictionary,
    verifyKey: signingKey.publicKey,
    target,
    ...options,
  });
  return importPackage({
    verified,
    target,
    pool,
    log,
    batchSize: options.batchSize ?? 500,
    onProgress: ({ applied }) => {
      if (options.stopAfter !== undefined && applied >= options.stopAfter)
        throw new Error(`test: stopped after ${applied} records`);
    },
  });
}

async function ngdbTarget(): Promise<Pool> {
  const { pool } = await testPool();
  return pool;
}

const checksumOf = (pool: Pool) => tableChecksum(pool, history.current.name, history.keyColumn);

async function refusal(promise: Promise<unknown>): Promise<{ code: ErrorCode; message: string }> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isLtError(error)) throw new Error(`expected an LtError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

describe('data packages', () => {
  it('an export → import round trip into an empty NGDB ends with the source’s checksum', async () => {
    const file = await exportTo();
    const target = await ngdbTarget();
    const result = await verifyAndImport(file, target);
    expect(result).toMatchObject({
      records: CITIZENS,
      alreadyImported: false,
      resumedFrom: 0,
      changed: CITIZENS,
    });
    expect(await checksumOf(target)).toBe(sourceChecksum);
    // deleted records travel as DELETEs and stay deleted, with their version
    const { rows } = await target.query<{ deleted: string }>(
      `SELECT count(*) FILTER (WHERE _deleted)::text AS deleted FROM ${history.current.name}`,
    );
    expect(Number(rows[0]!.deleted)).toBe(Math.ceil(CITIZENS / 25));
    const historyRows = await target.query(`SELECT 1 FROM ${history.name}`);
    expect(historyRows.rowCount).toBe(CITIZENS);
  });

  it('importing a package twice changes nothing, by its checkpoint and by the version guard', async () => {
    const file = await exportTo({ codec: 'null' });
    const target = await ngdbTarget();
    await verifyAndImport(file, target);
    const again = await verifyAndImport(file, target);
    expect(again.alreadyImported).toBe(true);
    await target.query('DELETE FROM lt_package_import'); // forget it was imported: the version guard remains
    const forced = await verifyAndImport(file, target);
    expect(forced).toMatchObject({ alreadyImported: false, changed: 0 });
    expect(await checksumOf(target)).toBe(sourceChecksum);
  });

  it.each(['history row', 'current row'] as const)(
    'a %s another transaction commits while the import inserts it is kept, not an error',
    async (written) => {
      const file = await exportTo({ codec: 'null' });
      const target = await ngdbTarget();
      const targetHistory = await createNgdbTables(target, dataset);
      const verified = await verifyPackage({
        file,
        dictionary,
        verifyKey: signingKey.publicKey,
        target: { kind: 'ngdb' },
      });
      const sink = await target.connect();
      let sinkPid: number | undefined;
      try {
        const importing = importPackage({
          verified,
          target: { kind: 'ngdb' },
          pool: target,
          log,
          batchSize: 500,
          // after the first batch (the next one has not begun): the NGDB sink writes one of the package's later
          // events from the stream at the same moment, and has not committed it yet
          onProgress: async ({ applied }) => {
            if (applied !== 500) return;
            const imported = await target.query<{ id: string }>(
              `SELECT _event_id::text AS id FROM ${history.name}`,
            );
            const present = new Set(imported.rows.map((row) => row.id));
            const { rows } = await source.query<{ key: string; eventId: string }>(
              `SELECT personal_id AS key, _event_id::text AS "eventId" FROM ${history.current.name}
              WHERE NOT _deleted AND _version = 1 ORDER BY personal_id`,
            );
            const later = rows.find((row) => !present.has(row.eventId))!;
            const citizen = citizens.find((candidate) => String(candidate.personal_id) === later.key)!;
            const event = { ...citizenEvent(dataset, later.key, 1, T1, citizen), eventId: later.eventId };
            await sink.query('BEGIN');
            if (written === 'history row')
              await sink.query(targetHistory.insertSql(), targetHistory.insertParams([event]));
            else
              await sink.query(
                targetHistory.current.upsertSql(),
                targetHistory.current.upsertParams([targetHistory.current.row(event)]),
              );
            sinkPid = (await sink.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          },
        });
        importing.catch(() => undefined); // awaited below
        // the import's insert (a COPY or an INSERT) waits on the uncommitted row; committing it makes that a
        // unique violation
        const deadline = Date.now() + 20_000;
        for (let waiting = 0; waiting === 0;) {
          if (Date.now() > deadline) throw new Error('the import never waited on the uncommitted row');
          await new Promise((resolve) => setTimeout(resolve, 20));
          if (sinkPid === undefined) continue;
          const blocked = await target.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE $1 = ANY (pg_blocking_pids(pid)) AND (query LIKE 'INSERT INTO%' OR query LIKE 'COPY %')`,
            [sinkPid],
          );
          waiting = blocked.rows[0]!.n;
        }
        await sink.query('COMMIT');
        // the other writer's row stands (same version: the guard keeps it); every other record is the import's
        expect(await importing).toMatchObject({
          records: CITIZENS,
          changed: written === 'history row' ? CITIZENS : CITIZENS - 1,
        });
      } finally {
        sink.release();
      }
      expect(await checksumOf(target)).toBe(sourceChecksum);
      expect((await target.query(`SELECT 1 FROM ${history.name}`)).rowCount).toBe(CITIZENS);
    },
  );

  it('an older package imported after a newer one changes nothing; alone it gives the state as of its time', async () => {
    const older = await exportTo({ asOf: new Date(T2.getTime() - 1) });
    const newer = await exportTo();
    const target = await ngdbTarget();
    await verifyAndImport(newer, target);
    const late = await verifyAndImport(older, target);
    expect(late.changed).toBe(0);
    expect(await checksumOf(target)).toBe(sourceChecksum);

    const asOfTarget = await ngdbTarget();
    const alone = await verifyAndImport(older, asOfTarget);
    expect(alone.records).toBe(CITIZENS);
    const { rows } = await asOfTarget.query<{ versions: string[]; deleted: number }>(
      `SELECT array_agg(DISTINCT _version::text) AS versions, count(*) FILTER (WHERE _deleted)::int AS deleted
         FROM ${history.current.name}`,
    );
    expect(rows[0]).toEqual({ versions: ['1'], deleted: 0 });
  });

  it('an interrupted import resumes after the records it applied and ends equal', async () => {
    const file = await exportTo();
    const target = await ngdbTarget();
    await expect(
      verifyAndImport(file, target, { kind: 'ngdb' }, { batchSize: 200, stopAfter: 400 }),
    ).rejects.toThrow('stopped after 400');
    const checkpoint = await target.query<{ applied: string; finished: Date | null }>(
      'SELECT records_applied::text AS applied, finished_at AS finished FROM lt_package_import',
    );
    expect(checkpoint.rows).toEqual([{ applied: '400', finished: null }]);
    expect((await target.query(`SELECT 1 FROM ${history.current.name}`)).rowCount).toBe(400);

    const resumed = await verifyAndImport(file, target, { kind: 'ngdb' }, { batchSize: 200 });
    expect(resumed).toMatchObject({ resumedFrom: 400, alreadyImported: false, changed: CITIZENS - 400 });
    expect(await checksumOf(target)).toBe(sourceChecksum);
  });

  it('text with tabs, newlines, backslashes and non-ASCII, nulls, nested values and old dates load unchanged', async () => {
    const { pool: odd } = await testPool();
    const oddHistory = await createNgdbTables(odd, dataset);
    const [first, second] = sampleCitizens(2, 99);
    const events = [
      citizenEvent(dataset, String(first!.personal_id), 7, T1, {
        ...first!,
        full_name: 'Nguyễn\tVăn\nA \\ "B" \r 🇻🇳',
        permanent_address: null,
        nationalities: ['VN', 'tab\there\\'],
        birth_date: '1900-03-01',
        death_date: '1969-12-31',
      }),
      citizenEvent(dataset, String(second!.personal_id), 2, T2, null),
    ];
    await writeNgdbEvents(odd, oddHistory, events);
    const file = await exportTo({ ngdb: odd });
    const target = await ngdbTarget();
    const result = await verifyAndImport(file, target);
    expect(result.changed).toBe(2);
    expect(await checksumOf(target)).toBe(await checksumOf(odd));
    const { rows } = await target.query<{ full_name: string; nationalities: unknown; death_date: string }>(
      `SELECT full_name, nationalities, to_char(death_date, 'YYYY-MM-DD') AS death_date
         FROM ${history.current.name} WHERE NOT _deleted`,
    );
    expect(rows).toEqual([
      {
        full_name: 'Nguyễn\tVăn\nA \\ "B" \r 🇻🇳',
        nationalities: ['VN', 'tab\there\\'],
        death_date: '1969-12-31',
      },
    ]);
  });

  it('a dataset with a decimal field (staged as text, so not COPYed straight into the history) round-trips', async () => {
    const enterprises = getDataset(dictionary, 'business.enterprise');
    const { pool: from } = await testPool();
    const fromHistory = await createNgdbTables(from, enterprises);
    const events = sampleEnterprises(300).map((record) =>
      citizenEvent(enterprises, String(record[enterprises.key.field]), 1, T1, record),
    );
    await writeNgdbEvents(from, fromHistory, events);
    const file = await exportTo({ ngdb: from, dataset: enterprises });
    const target = await ngdbTarget();
    expect(await verifyAndImport(file, target)).toMatchObject({ records: 300, changed: 300 });
    const checksum = (pool: Pool) => tableChecksum(pool, fromHistory.current.name, fromHistory.keyColumn);
    expect(await checksum(target)).toBe(await checksum(from));
    const { rows } = await target.query<{ n: number; capital: string }>(
      `SELECT count(*)::int AS n, sum(charter_capital)::text AS capital FROM ${fromHistory.name}`,
    );
    const sourceRows = await from.query<{ capital: string }>(
      `SELECT sum(charter_capital)::text AS capital FROM ${fromHistory.name}`,
    );
    expect(rows[0]).toEqual({ n: 300, capital: sourceRows.rows[0]!.capital });
    // imported again after its checkpoint is forgotten: the history's plain insert skips what it holds
    await target.query('DELETE FROM lt_package_import');
    expect(await verifyAndImport(file, target)).toMatchObject({ changed: 0 });
    expect((await target.query(`SELECT 1 FROM ${fromHistory.name}`)).rowCount).toBe(300);
  });

  describe('under an agreement', () => {
    const parsed = parseFilter('province_code == "01"');
    if (!parsed.ok) throw new Error('test filter does not parse');
    const agreement = {
      id: 'ubnd-hn-citizen-media',
      revision: 3,
      subscriber: 'UBND-HN',
      fields: ['personal_id', 'full_name', 'province_code'],
      filterText: 'province_code == "01"',
      matches: compileFilter(parsed.ast, dataset),
    };

    it('holds exactly the agreed fields and the rows inside the filter, and loads into the agency’s copy', async () => {
      const file = await exportTo({ agreement });
      const expected = citizens.filter(
        (citizen, index) => citizen.province_code === '01' && index % 25 !== 0,
      );
      const target = await ngdbTarget();
      const result = await verifyAndImport(file, target, { kind: 'agency', agency: 'UBND-HN' });
      expect(result.records).toBe(expected.length);
      const table = new SinkTable({
        ...dataset,
        fields: dataset.fields.filter((f) => agreement.fields.includes(f.name)),
      });
      const columns = await target.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 AND column_name NOT LIKE '\\_%'`,
        [table.name],
      );
      expect(columns.rows.map((row) => row.column_name).sort()).toEqual([...agreement.fields].sort());
      const { rows } = await target.query<{ keys: string[]; revisions: number[] }>(
        `SELECT array_agg(personal_id ORDER BY personal_id) AS keys, array_agg(DISTINCT _revision) AS revisions
           FROM ${table.name}`,
      );
      expect(rows[0]!.keys).toEqual(expected.map((citizen) => String(citizen.personal_id)).sort());
      expect(rows[0]!.revisions).toEqual([3]);
      // nothing of a record outside the agreement is in the package's bytes
      const outside = citizens.find((citizen) => citizen.province_code !== '01')!;
      expect(readFileSync(file).includes(Buffer.from(String(outside.personal_id)))).toBe(false);
    });

    it('is refused by the NGDB and by any other agency', async () => {
      const file = await exportTo({ agreement });
      const target = await ngdbTarget();
      for (const into of [{ kind: 'ngdb' }, { kind: 'agency', agency: 'UBND-HCM' }] as const) {
        const refused = await refusal(verifyAndImport(file, target, into));
        expect(refused.code).toBe('LT_PACKAGE_RECIPIENT');
        expect(refused.message).toContain('meant for agency UBND-HN');
      }
      expect(
        (await target.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema()`)).rowCount,
      ).toBe(0);
    });
  });

  it('encrypted for one agency: only its key opens it, and the bytes hold no record in clear', async () => {
    const hn = issueAgencyKey(home, 'UBND-HN');
    const hcm = issueAgencyKey(home, 'UBND-HCM');
    const file = await exportTo({
      recipient: { agency: 'UBND-HN', publicKey: readRecipientPublicKey(hn.publicKeyFile).publicKey },
      codec: 'null',
    });
    expect(readFileSync(file).includes(Buffer.from(String(citizens[1]!.full_name)))).toBe(false);
    const target = await ngdbTarget();
    const into = { kind: 'agency', agency: 'UBND-HN' } as const;

    const noKey = await refusal(verifyAndImport(file, target, into));
    expect(noKey.code).toBe('LT_PACKAGE_KEY_MISSING');
    const wrongKey = await refusal(
      verifyAndImport(file, target, into, {
        recipientKey: () => readRecipientPrivateKey(hcm.privateKeyFile),
      }),
    );
    expect(wrongKey).toMatchObject({ code: 'LT_PACKAGE_RECIPIENT' });
    expect(wrongKey.message).toContain('encrypted to another key');
    expect((await target.query(`SELECT 1 FROM pg_tables WHERE schemaname = current_schema()`)).rowCount).toBe(
      0,
    );

    const result = await verifyAndImport(file, target, into, {
      recipientKey: () => readRecipientPrivateKey(hn.privateKeyFile),
    });
    expect(result.records).toBe(CITIZENS);
    const copy = new SinkTable(dataset);
    expect(await tableChecksum(target, copy.name, copy.keyColumn)).toBe(sourceChecksum);
  });

  describe('bad packages are refused before anything is loaded', () => {
    let good: string;
    let target: Pool;
    let before: string;

    beforeAll(async () => {
      good = await exportTo({ codec: 'null' });
      target = await ngdbTarget();
      // the target already holds an older copy, which a refused package must leave as it is
      await verifyAndImport(await exportTo({ asOf: new Date(T2.getTime() - 1) }), target);
      before = await checksumOf(target);
    });

    async function expectRefused(file: string, code: ErrorCode, reason: string): Promise<void> {
      const refused = await refusal(verifyAndImport(file, target));
      expect(refused.code).toBe(code);
      expect(refused.message).toContain(reason);
      expect(await checksumOf(target)).toBe(before);
      const checkpoints = await target.query('SELECT 1 FROM lt_package_import');
      expect(checkpoints.rowCount).toBe(1); // the older package's only
    }

    function variant(bytes: Buffer): string {
      const file = join(dir, `bad-${++packages}.ltpkg`);
      writeFileSync(file, bytes);
      return file;
    }

    /** The package with its manifest replaced by `change(manifest)` and signed again with the platform's key. */
    async function resigned(change: (manifest: Record<string, unknown>) => void): Promise<string> {
      const bytes = readFileSync(good);
      const frame = await readFrame(good);
      const manifest = JSON.parse(frame.manifest.toString('utf8')) as Record<string, unknown>;
      change(manifest);
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      return variant(
        Buffer.concat([
          bytes.subarray(0, frame.partsEnd),
          packageTail(manifestBytes, signManifest(manifestBytes, signingKey.privateKey)),
        ]),
      );
    }

    it('one flipped byte in the records part', async () => {
      const bytes = Buffer.from(readFileSync(good));
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await expectRefused(variant(bytes), 'LT_PACKAGE_INVALID', 'does not match its SHA-256');
    });

    it('one flipped byte in the manifest', async () => {
      const bytes = Buffer.from(readFileSync(good));
      const frame = await readFrame(good);
      const at = frame.partsEnd + frame.manifest.indexOf('"records":') + 11;
      bytes[at]! ^= 0x01;
      await expectRefused(variant(bytes), 'LT_PACKAGE_SIGNATURE', 'signature does not verify');
    });

    it('a manifest signed by another key', async () => {
      const other = ensurePlatformSigningKey(mkdtempSync(join(tmpdir(), 'lt-packages-other-')));
      const file = join(dir, `other-${++packages}.ltpkg`);
      await exportPackage({ ngdb: source, dataset, out: file, signingKey: other, createdBy: 'lt-operator' });
      await expectRefused(file, 'LT_PACKAGE_SIGNATURE', 'signed by another key');
    });

    it('a validly signed manifest that does not match its parts', async () => {
      await expectRefused(
        await resigned((manifest) => (manifest.records = CITIZENS + 1)),
        'LT_PACKAGE_INVALID',
        `it holds ${CITIZENS} records; its manifest says ${CITIZENS + 1}`,
      );
      await expectRefused(
        await resigned((manifest) => {
          const [part] = manifest.parts as { sha256: string }[];
          part!.sha256 = '0'.repeat(64);
        }),
        'LT_PACKAGE_INVALID',
        'does not match its SHA-256',
      );
      await expectRefused(
        await resigned((manifest) => {
          const [part] = manifest.parts as { bytes: number }[];
          part!.bytes -= 1;
        }),
        'LT_PACKAGE_INVALID',
        'before the manifest',
      );
    });

    it('a validly signed manifest whose schema is not the dictionary’s', async () => {
      await expectRefused(
        await resigned((manifest) => (manifest.schema = { ...(manifest.schema as object), doc: 'another' })),
        'LT_PACKAGE_INVALID',
        'its schema differs from population.citizen in this dictionary',
      );
    });

    it('a package meant for another recipient', async () => {
      await expectRefused(
        await resigned((manifest) => (manifest.recipient = { agency: 'BHXH', encryption: null })),
        'LT_PACKAGE_RECIPIENT',
        'meant for agency BHXH, not ngdb',
      );
    });

    it('a truncated package', async () => {
      const bytes = readFileSync(good);
      await expectRefused(variant(bytes.subarray(0, bytes.length - 3)), 'LT_PACKAGE_INVALID', 'trailer');
    });
  });
});
