import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../../consumers/ngdb/index.ts';
import { rebuildNgdb } from '../../../consumers/rebuild/index.ts';
import { ExitCodes, ExitKinds, LtError, type ErrorCode } from '../../../infra/errors.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { quoteIdent, type Pool } from '../../../infra/postgres/pool.ts';
import { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import {
  log,
  testAgentDb,
  testKafka,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CITIZENS = 300;

describe('lienthong rebuild --sink ngdb builds a shadow copy beside the live one, compares and swaps', () => {
  const kafka = testKafka();
  const real = loadDictionary();
  const dataset: Dataset = { ...getDataset(real, 'population.citizen'), id: `${uniqueName('t')}.citizen` };
  const dictionary: Dictionary = { ...real, datasets: new Map([[dataset.id, dataset]]) };
  const topic = topics.source(dataset.id);
  const table = quoteIdent(dataset.id.replace(/[.-]/g, '_'));
  const liveGroup = uniqueName('lt.ngdb.live-');
  const databaseUrl = inject('services').databaseUrl;
  const citizens = sampleCitizens(CITIZENS, 278);
  const keyOf = (index: number): string => String(citizens[index]!.personal_id);
  /** The newest version published per key, and its record: what every copy must end up holding. */
  const expected = new Map<string, { version: number; after: DatasetRecord }>();

  let registry: SchemaRegistry;
  let pool: Pool;
  let schema: string;
  let bca: Publisher;
  let live: NgdbSink;

  const update = async (indexes: number[], label: string): Promise<void> => {
    const changes = indexes.map((index) => {
      const key = keyOf(index);
      const version = (expected.get(key)?.version ?? 0) + 1;
      const after = { ...citizens[index]!, full_name: `${citizens[index]!.full_name} ${label}` };
      expected.set(key, { version, after });
      return { op: 'UPDATE' as const, after, version, occurredAt: new Date() };
    });
    expect((await bca.publishBatch(dataset.id, changes)).rejected).toBe(0);
  };
  const liveRows = async (): Promise<Map<string, { version: number; name: string }>> => {
    const { rows } = await pool.query<{ k: string; v: string; n: string }>(
      `SELECT personal_id::text AS k, _version AS v, full_name AS n FROM ${table}`,
    );
    return new Map(rows.map((row) => [row.k, { version: Number(row.v), name: row.n }]));
  };
  const expectLiveEqualsPublished = async (): Promise<void> => {
    const rows = await liveRows();
    expect(rows.size).toBe(expected.size);
    for (const [key, want] of expected)
      expect(rows.get(key), key).toEqual({ version: want.version, name: want.after.full_name });
  };
  const tableOid = async (inSchema: string): Promise<string | null> => {
    const { rows } = await pool.query<{ oid: string | null }>(`SELECT to_regclass($1)::oid::text AS oid`, [
      `${quoteIdent(inSchema)}.${table}`,
    ]);
    return rows[0]!.oid;
  };

  beforeAll(async () => {
    ({ client: registry } = await testRegistry());
    ({ pool, schema } = await testPool());
    const redis = await testRedis();
    await ensureTopics(kafka, [{ topic, partitions: 3 }]);
    await publishDictionary(registry, dictionary, 'BCA'); // the dictionary publisher's step
    bca = new Publisher({
      kafka,
      registry,
      dictionary,
      agency: 'BCA',
      ledger: (await testAgentDb()).ledger,
      log,
    });
    await bca.connect();
    live = new NgdbSink({ kafka, registry, pool, dictionary, redis, log, groupId: liveGroup });
    await live.start();
    const created = citizens.map((after) => {
      expected.set(String(after.personal_id), { version: 1, after });
      return { op: 'CREATE' as const, after, version: 1, occurredAt: new Date() };
    });
    expect((await bca.publishBatch(dataset.id, created)).rejected).toBe(0);
    expect(await waitForGroup(kafka, liveGroup, topic, 60_000)).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await live.stop();
    await bca.close();
    for (const suffix of ['_rebuild', '_previous'])
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema + suffix)} CASCADE`);
  });

  it('a rebuild under live traffic converges, compares equal and swaps', async () => {
    const liveOid = await tableOid(schema);
    // traffic while rebuilding: the first 100 citizens change again and again, the rest stay as they are
    let publishing = true;
    let round = 0;
    const traffic = (async () => {
      while (publishing) {
        round += 1;
        await update(
          Array.from({ length: 10 }, (_, i) => (round * 10 + i) % 100),
          `r${round}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const progress: { done: number; total: number }[] = [];
    const result = await rebuildNgdb({
      kafka,
      registry,
      databaseUrl,
      liveSchema: schema,
      datasets: [dataset],
      dictionary,
      log,
      liveGroupId: liveGroup,
      groupId: uniqueName('lt.ngdb.rebuild-'),
      onProgress: (update) => progress.push(update),
    }).finally(() => (publishing = false));
    await traffic;
    expect(round).toBeGreaterThan(2); // the rebuild really ran under traffic

    expect(result.swapped).toBe(true);
    expect(result.tables).toHaveLength(1);
    expect(result.tables[0]!.equal).toBe(true);
    expect(result.tables[0]!.differingKeys).toEqual([]);
    expect(result.records).toBeGreaterThanOrEqual(CITIZENS);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.done).toBeGreaterThan(0);

    // the live schema now holds the shadow's table; the replaced one is kept in <schema>_previous
    expect(await tableOid(`${schema}_previous`)).toBe(liveOid);
    expect(await tableOid(schema)).not.toBe(liveOid);
    expect(await tableOid(`${schema}_rebuild`)).toBeNull();

    // the live sink, never stopped, goes on applying into the swapped tables
    const appliedBefore = live.stats.applied;
    await update([150, 151, 152], 'after-swap');
    expect(await waitForGroup(kafka, liveGroup, topic, 60_000)).toBe(0);
    await expect
      .poll(() => live.stats.applied - appliedBefore, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(3);
    await expectLiveEqualsPublished();
    const { rows: stale } = await pool.query<{ n: string }>(
      `SELECT full_name AS n FROM ${quoteIdent(`${schema}_previous`)}.${table} WHERE personal_id = $1`,
      [keyOf(150)],
    );
    expect(stale[0]!.n).not.toContain('after-swap');
    const { rows: history } = await pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM ${quoteIdent(`${dataset.id.replace(/[.-]/g, '_')}_history`)} WHERE personal_id = $1`,
      [keyOf(150)],
    );
    expect(history[0]!.count).toBe(2); // its CREATE and the update after the swap, each once
  }, 180_000);

  it('a forced mismatch swaps nothing and lists the differing key', async () => {
    const tampered = keyOf(200); // outside the keys traffic touches
    await pool.query(
      `UPDATE ${table} SET full_name = 'changed behind the sink’s back' WHERE personal_id = $1`,
      [tampered],
    );
    const liveOid = await tableOid(schema);
    const previousOid = await tableOid(`${schema}_previous`);
    const error = await rebuildNgdb({
      kafka,
      registry,
      databaseUrl,
      liveSchema: schema,
      datasets: [dataset],
      dictionary,
      log,
      liveGroupId: liveGroup,
      groupId: uniqueName('lt.ngdb.rebuild-'),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LtError);
    expect((error as LtError).code).toBe('LT_REBUILD_MISMATCH');
    expect((error as LtError).message).toContain(tampered);
    const details = (error as LtError).details as { tables: { differingKeys: string[]; equal: boolean }[] };
    expect(details.tables[0]!.equal).toBe(false);
    expect(details.tables[0]!.differingKeys).toEqual([tampered]);
    // nothing swapped: the same live and previous tables, the tampered row as it was
    expect(await tableOid(schema)).toBe(liveOid);
    expect(await tableOid(`${schema}_previous`)).toBe(previousOid);
    expect((await liveRows()).get(tampered)!.name).toBe('changed behind the sink’s back');
  }, 180_000);

  it('refuses a rebuild of an NGDB schema that holds no copy, and changes nothing', async () => {
    const missing = uniqueName('t_none_');
    const error = await rebuildNgdb({
      kafka,
      registry,
      databaseUrl,
      liveSchema: missing,
      datasets: [dataset],
      dictionary,
      log,
      groupId: uniqueName('lt.ngdb.rebuild-'),
    }).catch((caught: unknown) => caught);
    expect((error as LtError).code).toBe('LT_SINK_UNKNOWN');
    const { rows } = await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname LIKE $1`, [`${missing}%`]);
    expect(rows).toEqual([]);
  }, 60_000);
});

describe('lienthong rebuild refuses bad input with one clear message and a non-zero exit', () => {
  const platformSchema = uniqueName('t_rb_platform_');
  const databaseUrl = inject('services').databaseUrl;
  const rebuild = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['cli/lienthong.js', 'rebuild', '--platform-schema', platformSchema, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
  afterAll(async () => {
    const { pool } = await testPool();
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(platformSchema)} CASCADE`);
  });

  it.each([
    [['--sink', 'warehouse'], 'LT_CONFIG_INVALID', '--sink "warehouse"'],
    [['--sink', 'ngdb', '--dataset', 'no.such-dataset'], 'LT_DATASET_UNKNOWN', 'no.such-dataset'],
    [['--sink', 'ngdb', '--agreement', 'x-1'], 'LT_CONFIG_INVALID', '--agreement does not apply'],
    [['--sink', 'agency:NOPE'], 'LT_SINK_UNKNOWN', 'no agency "NOPE"'],
    [
      ['--sink', 'agency:BCA', '--agreement', 'no-such-agreement'],
      'LT_AGREEMENT_UNKNOWN',
      'no-such-agreement',
    ],
    [
      ['--sink', 'agency:BCA', '--dataset', 'population.citizen'],
      'LT_SINK_UNKNOWN',
      'no agreement on dataset',
    ],
  ])('rebuild %j is refused with %s', (args, code, words) => {
    const run = rebuild(...args);
    // the exit code of the refusal's kind (docs/cli.md)
    expect(run.status, run.stderr).toBe(ExitCodes[ExitKinds[code as ErrorCode]]);
    expect(run.stderr).toContain(code);
    expect(run.stderr).toContain(words);
    expect(run.stderr).toContain('→'); // the hint saying what to do next
  });
});
