import { ExitCodes } from '../../../infra/errors.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { HistoryTable } from '../../../schemas/postgres/history.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { operatorAuditTrail } from '../../../platform/audit/operator-audit.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { existsSync } from 'node:fs';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { AgreementStore, type SharingMethod } from '../../../platform/agreements/index.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { citizenEvent, createNgdbTables, tableChecksum, writeNgdbEvents } from '../../helpers/ngdb-seed.ts';
import { testPool } from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dictionary = loadDictionary();
const dataset = getDataset(dictionary, 'population.citizen');
const home = mkdtempSync(join(tmpdir(), 'lt-packages-cli-home-'));
const dir = mkdtempSync(join(tmpdir(), 'lt-packages-cli-'));

/** Runs `lienthong <args>` as an operator would, with a home of its own; resolves with its exit code and output. */
function lienthong(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['cli/lienthong.js', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: inject('services').databaseUrl,
      LIENTHONG_HOME: home,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, output })));
}

let ngdb: { pool: Pool; schema: string };
let platform: { pool: Pool; schema: string };
let history: HistoryTable;

beforeAll(async () => {
  ngdb = await testPool();
  platform = await testPool();
  history = await createNgdbTables(ngdb.pool, dataset);
  const at = new Date('2026-06-01T00:00:00Z');
  await writeNgdbEvents(
    ngdb.pool,
    history,
    sampleCitizens(300, 7).map((citizen) =>
      citizenEvent(dataset, String(citizen.personal_id), 1, at, citizen),
    ),
  );
});

describe('lienthong export and import', () => {
  it('export, then import into another schema: equal, and both recorded in operator_audit', async () => {
    const file = join(dir, 'citizen.ltpkg');
    const exported = await lienthong([
      'export',
      '--dataset',
      'population.citizen',
      '--out',
      file,
      '--schema',
      ngdb.schema,
      '--platform-schema',
      platform.schema,
    ]);
    expect(exported.output).toContain('300 records');
    expect(exported.code).toBe(0);

    const target = await testPool();
    const imported = await lienthong([
      'import',
      file,
      '--schema',
      target.schema,
      '--platform-schema',
      platform.schema,
    ]);
    expect(imported.output).toContain('verified:');
    expect(imported.code).toBe(0);
    expect(await tableChecksum(target.pool, history.current.name, history.keyColumn)).toBe(
      await tableChecksum(ngdb.pool, history.current.name, history.keyColumn),
    );

    const trail = await operatorAuditTrail(platform.pool);
    expect(trail.map(({ action, outcome, principal }) => ({ action, outcome, principal }))).toEqual([
      { action: 'package.import', outcome: 'done', principal: 'lt-operator' },
      { action: 'package.export', outcome: 'done', principal: 'lt-operator' },
    ]);
    expect(trail[0]!.detail).toMatchObject({ dataset: 'population.citizen', records: 300 });
  });

  it('a damaged package is refused with its reason, exit 1, nothing loaded, and the refusal audited', async () => {
    const file = join(dir, 'damaged.ltpkg');
    await lienthong([
      'export',
      '--dataset',
      'population.citizen',
      '--out',
      file,
      '--schema',
      ngdb.schema,
      '--platform-schema',
      platform.schema,
    ]);
    const bytes = readFileSync(file);
    bytes[100]! ^= 0x80;
    writeFileSync(file, bytes);

    const target = await testPool();
    const refused = await lienthong([
      'import',
      file,
      '--schema',
      target.schema,
      '--platform-schema',
      platform.schema,
    ]);
    expect(refused.code).toBe(ExitCodes.refused); // docs/cli.md: a refused package exits 5
    expect(refused.output).toContain('LT_PACKAGE_INVALID');
    expect(refused.output).toContain('does not match its SHA-256');
    expect(refused.output).toContain('→ copy the package from its medium again');
    const tables = await target.pool.query('SELECT 1 FROM pg_tables WHERE schemaname = current_schema()');
    expect(tables.rowCount).toBe(0);
    const [latest] = await operatorAuditTrail(platform.pool, { action: 'package.import', limit: 1 });
    expect(latest).toMatchObject({ outcome: 'refused', detail: { code: 'LT_PACKAGE_INVALID' } });
  });

  it('export --agreement refuses an agreement without method media (LT_METHOD_NOT_ALLOWED, exit 5, no file) and packages one with it', async () => {
    await migrate(platform.pool, 'platform');
    const store = new AgreementStore(platform.pool, dictionary);
    const agreement = async (id: string, methods: SharingMethod[]): Promise<string> => {
      await store.create(
        {
          id,
          subscriber: 'UBND-HN',
          dataset: 'population.citizen',
          fields: ['personal_id', 'full_name', 'province_code'],
          filter: 'province_code == "01"',
          purpose: 'local administrative procedures',
          legalBasis: 'Decree 278/2025/ND-CP, method (d)',
          methods,
        },
        'agency.UBND-HN',
      );
      await store.approve(id, 'agency.BCA');
      return id;
    };
    const exportUnder = (id: string, file: string) =>
      lienthong([
        'export',
        '--dataset',
        'population.citizen',
        '--agreement',
        id,
        '--out',
        file,
        '--schema',
        ngdb.schema,
        '--platform-schema',
        platform.schema,
      ]);

    const streamOnly = await agreement(`pk-sync-${process.pid}`, ['sync', 'query']);
    const refusedFile = join(dir, 'not-media.ltpkg');
    const refused = await exportUnder(streamOnly, refusedFile);
    expect(refused.code).toBe(ExitCodes.refused);
    expect(refused.output).toContain('LT_METHOD_NOT_ALLOWED');
    expect(refused.output).toContain(`agreement ${streamOnly} does not allow method media`);
    expect(refused.output).toContain('→ a package (decree method (d)) needs an agreement with method media');
    expect(existsSync(refusedFile)).toBe(false);

    const media = await agreement(`pk-media-${process.pid}`, ['sync', 'media']);
    const hanoi = sampleCitizens(300, 7).filter((citizen) => citizen.province_code === '01').length;
    const done = await exportUnder(media, join(dir, 'media.ltpkg'));
    expect(done.code).toBe(0);
    expect(done.output).toContain(`${hanoi} records`);
  });
});
