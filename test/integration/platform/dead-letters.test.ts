import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../../consumers/ngdb/index.ts';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { operatorAuditTrail } from '../../../platform/audit/operator-audit.ts';
import {
  deadLetterCounts,
  discardDeadLetters,
  listDeadLetters,
  parseDeadLetterAddress,
  redriveDeadLetters,
  showDeadLetter,
  type DeadLetterSources,
  type DeadLetterView,
} from '../../../platform/dead-letters/index.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { registerDatasetSchemas, registerTopicSchemas } from '../../../schemas/registry/client.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { citizenEvent } from '../../helpers/hostile.ts';
import {
  childKafkaEnv,
  log,
  testKafka,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Runs `lienthong <args>` as an operator would; resolves its exit code and output. */
function lienthong(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['cli/lienthong.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: inject('services').databaseUrl, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, stdout, stderr })));
}

describe('dead letters: list, show, redrive after the cause is fixed, discard with a reason', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const sourceTopic = topics.source(dataset.id);
  const principal = 'lt-operator';
  let registry: Awaited<ReturnType<typeof testRegistry>>;
  let platform: Pool;
  let platformSchema: string;
  let ngdb: Pool;
  let sink: NgdbSink;
  let sources: DeadLetterSources;
  const ours = (views: DeadLetterView[]) => views.filter((view) => view.dataset === dataset.id);

  beforeAll(async () => {
    registry = await testRegistry();
    ({ pool: platform, schema: platformSchema } = await testPool());
    await migrate(platform, 'platform');
    ({ pool: ngdb } = await testPool());
    await ensureTopics(kafka, [{ topic: sourceTopic, partitions: 1 }]);
    sink = new NgdbSink({
      kafka,
      registry: registry.client,
      pool: ngdb,
      dictionary: { ...dictionary, datasets: new Map([[dataset.id, dataset]]) },
      redis: await testRedis(),
      groupId: uniqueName('lt.ngdb.t'),
      log,
    });
    await sink.start();
    sources = { kafka, pool: platform, dictionary, agreements: [] };
  }, 60_000);

  afterAll(async () => {
    await sink?.stop();
  });

  const currentRows = async (): Promise<number> => {
    const table = sink.tables.get(sourceTopic)!.current.name;
    const { rows } = await ngdb.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table}"`);
    return Number(rows[0]!.n);
  };

  it('a redrive before the cause is fixed reports every record as still failing and changes nothing; after the schema is registered under the topic, the redrive lands them in the NGDB and empties the DLQ of them', async () => {
    // the value schema is registered, but under another subject only: the NGDB refuses what names it
    const decoy = await registerTopicSchemas(registry.client, uniqueName('lt.decoy-'), dataset, 'NONE');
    const events = [1, 2, 3].map((seed) => citizenEvent(dataset.id, 400 + seed));
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic: sourceTopic,
      acks: -1,
      messages: await Promise.all(
        events.map(async (event) => ({
          key: event.key,
          value: await registry.client.encode(decoy.valueSchemaId, event),
        })),
      ),
    });
    await producer.disconnect();

    await expect
      .poll(async () => ours(await listDeadLetters(sources)).length, { timeout: 60_000, interval: 1_000 })
      .toBe(3);
    const dead = ours(await listDeadLetters(sources, { filter: { stage: 'ngdb', dataset: dataset.id } }));
    expect(dead.map((view) => view.code)).toEqual(Array(3).fill('LT_SCHEMA_NOT_OF_TOPIC'));
    expect(dead.map((view) => view.key).sort()).toEqual(events.map((event) => event.key).sort());
    expect(dead.every((view) => view.status === 'open' && view.source !== null)).toBe(true);
    expect(await currentRows()).toBe(0);

    const early = await redriveDeadLetters(sources, {
      filter: { dataset: dataset.id },
      registry: registry.client,
      principal,
      resync: () => Promise.reject(new Error('no agreement is involved')),
      log,
    });
    expect(early.redriven).toEqual([]);
    expect(early.stillFailing.map((one) => one.code)).toEqual(Array(3).fill('LT_SCHEMA_NOT_OF_TOPIC'));
    expect(ours(await listDeadLetters(sources)).length).toBe(3);

    // the fix: the same schema registered under the topic's subject (it keeps its id)
    const fixed = await registerDatasetSchemas(registry.client, dataset);
    expect(fixed.valueSchemaId).toBe(decoy.valueSchemaId);

    const report = await redriveDeadLetters(sources, {
      filter: { dataset: dataset.id, code: 'LT_SCHEMA_NOT_OF_TOPIC' },
      registry: registry.client,
      principal,
      resync: () => Promise.reject(new Error('no agreement is involved')),
      log,
    });
    expect(report.stillFailing).toEqual([]);
    expect(report.redriven.map((one) => one.to)).toEqual(Array(3).fill(topics.redrive('ngdb')));
    expect(ours(await listDeadLetters(sources))).toEqual([]);
    await expect.poll(currentRows, { timeout: 60_000, interval: 500 }).toBe(3);
    // nothing was refused again
    expect(ours(await listDeadLetters(sources)).length).toBe(0);
    const all = ours(await listDeadLetters(sources, { includeResolved: true }));
    expect(all.map((view) => view.status)).toEqual(Array(3).fill('redriven'));

    const [entry] = await operatorAuditTrail(platform, { action: 'dlq.redrive', limit: 1 });
    expect(entry).toMatchObject({ principal, outcome: 'done', target: topics.deadLetter('ngdb') });
    expect(entry!.seq).toBe(report.auditSeq);
    expect(all[0]!.resolution).toMatchObject({
      resolution: 'redriven',
      principal,
      auditSeq: report.auditSeq,
    });
  }, 180_000);

  it('shows an undecodable dead letter as a bounded hex and text preview with its reason; refuses a discard without a reason; a discard with one is audited and the record is no longer open', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic: sourceTopic,
      acks: -1,
      messages: [{ key: 'random-bytes', value: Buffer.from('d1e5c0ffee', 'hex') }],
    });
    await producer.disconnect();
    await expect
      .poll(
        async () => ours(await listDeadLetters(sources, { filter: { code: 'LT_DECODE_FAILED' } })).length,
        { timeout: 60_000, interval: 1_000 },
      )
      .toBe(1);
    const [dead] = ours(await listDeadLetters(sources, { filter: { code: 'LT_DECODE_FAILED' } }));
    const shown = await showDeadLetter(sources, registry.client, parseDeadLetterAddress(dead!.address));
    expect(shown.deadLetter.detail).toMatch(/wire format/);
    expect(shown.key).toEqual({ text: 'random-bytes' });
    expect(shown.value).toMatchObject({ schemaId: null, preview: { bytes: 5, hex: 'd1e5c0ffee' } });

    const selection = { addresses: [parseDeadLetterAddress(dead!.address)] };
    await expect(
      discardDeadLetters(sources, { ...selection, reason: '  ', principal }),
    ).rejects.toMatchObject({
      code: 'LT_ARGUMENT_INVALID',
      message: 'a discard states its reason',
    });
    expect(ours(await listDeadLetters(sources)).map((view) => view.address)).toEqual([dead!.address]);

    const reason = 'bytes from a broken test client at BCA, ticket 4411';
    const discarded = await discardDeadLetters(sources, { ...selection, reason, principal });
    expect(discarded.discarded).toEqual([dead!.address]);
    expect(ours(await listDeadLetters(sources))).toEqual([]);
    const [entry] = await operatorAuditTrail(platform, { action: 'dlq.discard', limit: 1 });
    expect(entry).toMatchObject({ seq: discarded.auditSeq, principal, outcome: 'done' });
    expect(entry!.detail).toMatchObject({ reason, addresses: [dead!.address] });
    // discarding it again finds nothing open: refused, nothing changed
    await expect(discardDeadLetters(sources, { ...selection, reason, principal })).rejects.toMatchObject({
      code: 'LT_DEAD_LETTER_UNKNOWN',
    });

    const counts = await deadLetterCounts(sources);
    const ngdbCount = counts.find((count) => count.topic === topics.deadLetter('ngdb'))!;
    expect(ngdbCount.kept).toBeGreaterThanOrEqual(4);
    expect(ngdbCount.open).toBe(ngdbCount.kept - ngdbCount.resolved);
    expect(ngdbCount.resolved).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('lists dead letters from the command line as JSON, resolved ones with --all', async () => {
    const listed = await lienthong(
      ['dlq', 'list', '--all', '--json', '--schema', platformSchema],
      childKafkaEnv(),
    );
    expect(listed.stderr).not.toMatch(/LT_/);
    expect(listed.code).toBe(0);
    const views = ours(JSON.parse(listed.stdout) as DeadLetterView[]);
    expect(views.map((view) => view.status).sort()).toEqual([
      'discarded',
      'redriven',
      'redriven',
      'redriven',
    ]);
  }, 60_000);

  it.each([
    [['dlq', 'list', '--stage', 'nope'], /LT_ARGUMENT_INVALID: unknown stage "nope"/],
    [['dlq', 'list', '--agency', 'NOPE'], /LT_ARGUMENT_INVALID: unknown agency "NOPE"/],
    [['dlq', 'list', '--dataset', 'no.such'], /LT_ARGUMENT_INVALID: unknown dataset "no.such"/],
    [['dlq', 'list', '--code', 'LT_NOPE'], /LT_ARGUMENT_INVALID: unknown error code "LT_NOPE"/],
    [['dlq', 'list', '--since', 'yesterday'], /is neither a time nor a duration/],
    [['dlq', 'show', 'lt.dlq.ngdb:x:17'], /"lt.dlq.ngdb:x:17" is not a dead-letter address/],
    [['dlq', 'show', 'lt.src.population.citizen:0:1'], /is not a dead-letter address/],
    [['dlq', 'discard', '--stage', 'ngdb'], /LT_ARGUMENT_INVALID: a discard states its reason/],
    [['dlq', 'redrive', '--stage', 'ngdb', 'lt.dlq.ngdb:0'], /is not a dead-letter address/],
  ])(
    'refuses `lienthong %s` with one clear message and a non-zero exit',
    async (args, message) => {
      const result = await lienthong([...args, '--schema', platformSchema], childKafkaEnv());
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/→ /); // the hint: what to do next
      expect(result.code).not.toBe(0);
    },
    30_000,
  );

  it('the refused commands changed nothing: no audit entry beyond the redrives and the discard', async () => {
    const trail = await operatorAuditTrail(platform);
    expect(trail.map((entry) => entry.action).sort()).toEqual(['dlq.discard', 'dlq.redrive', 'dlq.redrive']);
  });
});
