import { ExitCodes, ExitKinds, type ErrorCode } from '../../../infra/errors.ts';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../../consumers/ngdb/index.ts';
import { planReplay, type ReplayPlan } from '../../../consumers/replay/index.ts';
import { startSubscription, type RunningSubscription } from '../../../consumers/subscription/index.ts';
import { aclKey, currentAcls, reconcileAcls } from '../../../infra/kafka/acl.ts';
import { ensureTopics, groupLag } from '../../../infra/kafka/admin.ts';
import { setScramPassword } from '../../../infra/kafka/scram.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { createPool, quoteIdent, type Pool } from '../../../infra/postgres/pool.ts';
import { caFile, newPassword, principals, writeCredential } from '../../../infra/security/principals.ts';
import { desiredAcls } from '../../../platform/access/plan.ts';
import { operatorAuditTrail } from '../../../platform/audit/operator-audit.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  env,
  kafkaSecurity,
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const services = inject('services');

/**
 * `lienthong replay` as an operator runs it: its own process, as lt-operator with nothing but the grants
 * `acl sync` derives for it (on a plaintext broker: LIENTHONG_INSECURE), auditing into the test's schema.
 */
describe('lienthong replay on real services', () => {
  const kafka = testKafka();
  const { dataset, dictionary } = isolatedDataset(loadDictionary(), 'population.citizen');
  const source = topics.source(dataset.id);
  const agreement = approvedAgreement({
    id: uniqueName('replay-'),
    subscriber: 'BHXH',
    dataset: dataset.id,
    fields: ['personal_id', 'full_name', 'birth_date'],
  });
  const share = topics.share(agreement.id);
  const ngdbGroup = uniqueName('lt.ngdb.replay-');
  const sinkGroup = consumerGroups.subscription('BHXH', agreement.id);
  const sinkSchema = `lt_share_${agreement.id.replace(/-/g, '_')}`;
  const stops: (() => Promise<unknown>)[] = [];
  let operatorHome: string;
  let platformSchema: string;
  let platformPool: Pool;
  let ngdbPool: Pool;
  let registry: Awaited<ReturnType<typeof testRegistry>>['client'];
  let redis: Awaited<ReturnType<typeof testRedis>>;
  let coordinator: Coordinator;
  let ngdb: NgdbSink | undefined;
  let subscription: RunningSubscription | undefined;

  const startNgdb = async (): Promise<NgdbSink> => {
    const sink = new NgdbSink({
      kafka,
      registry,
      pool: ngdbPool,
      dictionary: { ...dictionary, datasets: new Map([[dataset.id, dataset]]) },
      redis,
      log,
      groupId: ngdbGroup,
    });
    await sink.start();
    return sink;
  };
  const startCopy = (): Promise<RunningSubscription> =>
    startSubscription(
      { agreement: agreement.id, dataset: dataset.id },
      { kafka, registry, dictionary, databaseUrl: services.databaseUrl, agency: 'BHXH', redis, log },
    );

  /** The committed offsets of a group, as `topic:partition=offset`, to show nothing moved. */
  const committed = async (groupId: string): Promise<string[]> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchOffsets({ groupId }))
        .flatMap(({ topic, partitions }) => partitions.map((p) => `${topic}:${p.partition}=${p.offset}`))
        .sort();
    } finally {
      await admin.disconnect();
    }
  };

  /** Polls `lagOf` until it is 0 (expect.poll is for tests, not their set-up). */
  const drained = async (lagOf: () => Promise<number>, timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = await lagOf();
    while (last > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      last = await lagOf();
    }
    if (last > 0) throw new Error(`not drained after ${timeoutMs} ms: lag ${last}`);
  };

  const lag = async (): Promise<number> =>
    (await groupLag(kafka, ngdbGroup, source)) + (await groupLag(kafka, sinkGroup, share));

  /** Every column of every row, `_committed_at`, `_seq` and `_received_at` included: any rewrite shows. */
  const checksum = async (pool: Pool, table: string, key: string): Promise<{ rows: number; sum: string }> => {
    const { rows } = await pool.query<{ rows: number; sum: string }>(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY ${key}), '')) AS sum
         FROM ${table} t`,
    );
    return rows[0]!;
  };
  const copies = async () => {
    const table = ngdb!.tables.get(source)!;
    return {
      ngdbCurrent: await checksum(ngdbPool, quoteIdent(table.current.name), 'personal_id'),
      ngdbHistory: await checksum(ngdbPool, quoteIdent(table.name), '_seq'),
      subscriber: await checksum(
        subscription!.pool,
        `${quoteIdent(sinkSchema)}.${quoteIdent(subscription!.sink.table.name)}`,
        'personal_id',
      ),
    };
  };

  /** Runs `lienthong replay …`; resolves with its exit code and output. */
  const replay = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const childEnv: NodeJS.ProcessEnv = {
        ...process.env,
        KAFKA_BROKERS: services.kafkaBrokers.join(','),
        DATABASE_URL: services.databaseUrl,
        LIENTHONG_HOME: operatorHome,
        LOG_LEVEL: 'warn',
        ...(kafkaSecurity ? {} : { LIENTHONG_INSECURE: '1' }),
      };
      delete childEnv.KAFKA_PRINCIPAL; // the command's own principal: lt-operator
      const child = spawn(
        process.execPath,
        ['cli/lienthong.js', 'replay', ...args, '--schema', platformSchema],
        { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    registry = (await testRegistry()).client;
    redis = await testRedis();
    ({ pool: platformPool, schema: platformSchema } = await testPool());
    await migrate(platformPool, 'platform');
    ngdbPool = (await testPool()).pool;
    await ensureTopics(kafka, [
      { topic: source, partitions: 3 },
      ...[topics.deadLetter('ngdb'), topics.deadLetter('coordinator'), topics.deadLetter('sink', 'BHXH')].map(
        (topic) => ({ topic, partitions: 1 }),
      ),
    ]);

    // lt-operator's credential in a LIENTHONG_HOME of its own, and exactly the grants acl sync derives for it
    operatorHome = mkdtempSync(join(tmpdir(), 'lt-replay-operator-'));
    if (kafkaSecurity) {
      const password = newPassword();
      setScramPassword(
        { home: env.LIENTHONG_HOME, brokers: services.kafkaBrokers, admin: kafkaSecurity, log },
        principals.operator,
        password,
      );
      writeCredential(operatorHome, {
        principal: principals.operator,
        password,
        issuedAt: new Date().toISOString(),
      });
      mkdirSync(join(operatorHome, 'security', 'ca'), { recursive: true });
      writeFileSync(caFile(operatorHome), kafkaSecurity.ca);
      const operatorGrants = desiredAcls({ dictionary, agreements: [agreement] }).filter(
        (grant) => grant.principal === `User:${principals.operator}`,
      );
      // added beside whatever the broker holds (a test never revokes another's grants)
      await reconcileAcls(kafka, [...(await currentAcls(kafka)).grants, ...operatorGrants]);
    }

    const publisher = await testPublisher(registry, dictionary, 'BCA');
    const citizens = sampleCitizens(150, 278);
    const publish = async (changes: Parameters<typeof publisher.publishBatch>[1]) =>
      expect((await publisher.publishBatch(dataset.id, changes)).rejected).toBe(0);
    await publish(citizens.map((after) => ({ op: 'CREATE', version: 1, after })));
    await publish(
      citizens.slice(0, 40).map((citizen) => ({
        op: 'UPDATE',
        version: 2,
        after: { ...citizen, full_name: `${String(citizen.full_name)} (đổi tên)` },
      })),
    );
    await publish(
      citizens.slice(140).map((citizen) => ({ op: 'DELETE', version: 3, key: String(citizen.personal_id) })),
    );

    coordinator = await testCoordinator({
      registry,
      dictionary,
      pool: platformPool,
      loadAgreements: async () => [agreement],
    });
    stops.push(() => coordinator.stop());
    ngdb = await startNgdb();
    await drained(async () => groupLag(kafka, coordinator['options'].groupId!, source));
    subscription = await startCopy();
    await drained(lag);
  }, 180_000);

  afterAll(async () => {
    await ngdb?.stop();
    await subscription?.stop();
    const cleanup = await createPool({ url: services.databaseUrl, max: 1 });
    await cleanup.query(`DROP SCHEMA IF EXISTS ${quoteIdent(sinkSchema)} CASCADE`);
    await cleanup.end();
    for (const stop of stops) await stop();
    if (operatorHome) rmSync(operatorHome, { recursive: true, force: true });
  });

  it('refuses a group with live members, says how to stop them, and moves nothing', async () => {
    const before = await committed(ngdbGroup);
    const result = await replay(['--group', ngdbGroup, '--to-earliest']);
    expect(result.code).toBe(ExitCodes.refused);
    expect(result.stderr).toContain('LT_GROUP_ACTIVE');
    expect(result.stderr).toContain('live member');
    expect(result.stderr).toContain('stop every process of the group');
    expect(await committed(ngdbGroup)).toEqual(before);
  });

  it('replays to earliest, and after catch-up every copy’s checksum is unchanged', async () => {
    const before = await copies();
    expect(before.ngdbCurrent.rows).toBe(150);
    expect(before.ngdbHistory.rows).toBe(150 + 40 + 10);
    expect(before.subscriber.rows).toBe(150);

    await ngdb!.stop();
    await subscription!.stop();
    ngdb = undefined;
    subscription = undefined;
    // Redis forgets every event id: the re-read reaches PostgreSQL, where only the version guard stands
    const keys = await redis.keys(`${redis.options.keyPrefix ?? ''}*`);
    if (keys.length > 0)
      await redis.del(...keys.map((key) => key.slice((redis.options.keyPrefix ?? '').length)));

    const offsetsBefore = await committed(ngdbGroup);
    const dry = await replay(['--group', ngdbGroup, '--to-earliest', '--dry-run', '--json']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as ReplayPlan & { state: string };
    expect(plan.state).toBe('planned');
    expect(plan.partitions.map((move) => move.topic)).toEqual([source, source, source]);
    expect(plan.reread).toBe(150 + 40 + 10 + 10); // events and the tombstones after the deletes
    expect(plan.partitions.every((move) => move.to === 0)).toBe(true);
    expect(await committed(ngdbGroup)).toEqual(offsetsBefore); // a dry run changes nothing

    for (const group of [ngdbGroup, sinkGroup]) {
      const done = await replay(['--group', group, '--to-earliest']);
      expect(done.stderr).toBe('');
      expect(done.code).toBe(0);
      expect(done.stdout).toContain('partition(s) move back');
      expect((await committed(group)).every((line) => line.endsWith('=0'))).toBe(true);
    }
    const trail = await operatorAuditTrail(platformPool, { action: 'replay' });
    const outcomes = trail.map((entry) => `${entry.target} ${entry.outcome}`);
    expect(outcomes.slice(0, 3)).toEqual([`${sinkGroup} done`, `${ngdbGroup} done`, `${ngdbGroup} planned`]);
    expect(new Set(trail.map((entry) => entry.principal))).toEqual(
      new Set([kafkaSecurity ? principals.operator : `${principals.operator} (insecure: unauthenticated)`]),
    );

    ngdb = await startNgdb();
    subscription = await startCopy();
    await expect.poll(lag, { timeout: 60_000, interval: 500 }).toBe(0);
    // they did read everything again …
    expect(ngdb.stats.received).toBeGreaterThanOrEqual(150 + 40 + 10);
    expect(subscription.sink.stats.received).toBeGreaterThanOrEqual(150);
    // … and every copy is as it was, to the last column
    expect(await copies()).toEqual(before);
  }, 120_000);

  describe('refuses bad input with one clear message, a non-zero exit, and nothing changed', () => {
    let offsets: string[];
    beforeAll(async () => {
      // stopped groups, so only the input is wrong
      await ngdb?.stop();
      ngdb = undefined;
      await subscription?.stop();
      subscription = undefined;
      offsets = await committed(ngdbGroup);
    });

    const refused = async (args: string[], code: string, says: string): Promise<void> => {
      const result = await replay(args);
      // the exit code of the refusal's kind (docs/cli.md): 2 for a malformed request, 5 for a refused one
      expect(result.code).toBe(ExitCodes[ExitKinds[code as ErrorCode]]);
      expect(result.stderr).toContain(code);
      expect(result.stderr).toContain(says);
      expect(result.stderr).toContain('→'); // the hint: what to do next
      // no plan, nothing but log records (kafkajs logs the broker's refusal it then hides)
      expect(result.stdout.split('\n').filter((line) => line && !line.startsWith('{"level"'))).toEqual([]);
    };

    it('an unknown group', () =>
      refused(
        ['--group', uniqueName('lt.nosuch-'), '--to-earliest'],
        'LT_GROUP_UNKNOWN',
        'no consumer group',
      ));

    it('an unknown dataset', () =>
      refused(
        ['--group', ngdbGroup, '--to-earliest', '--dataset', 'no.such-dataset'],
        'LT_DATASET_UNKNOWN',
        'no dataset no.such-dataset',
      ));

    it('an unknown topic, and a topic the group does not read', async () => {
      await refused(
        ['--group', ngdbGroup, '--to-offset', `${uniqueName('lt.src.nosuch')}.x:0:0`],
        'LT_TOPIC_UNKNOWN',
        'there is no topic',
      );
      await refused(
        ['--group', ngdbGroup, '--to-offset', `${share}:0:0`],
        'LT_TOPIC_UNKNOWN',
        `does not read ${share}`,
      );
    });

    it('an offset out of range, and an unknown partition', async () => {
      await refused(
        ['--group', ngdbGroup, '--to-offset', `${source}:0:999999`],
        'LT_OFFSET_OUT_OF_RANGE',
        'is outside',
      );
      await refused(
        ['--group', ngdbGroup, '--to-offset', `${source}:7:0`],
        'LT_TOPIC_UNKNOWN',
        'no partition 7',
      );
    });

    it('a time in the future, and no target or two', async () => {
      await refused(
        ['--group', ngdbGroup, '--to-datetime', '2999-01-01T00:00:00Z'],
        'LT_REPLAY_INVALID',
        'in the future',
      );
      await refused(['--group', ngdbGroup], 'LT_REPLAY_INVALID', 'name where to replay from');
      await refused(
        ['--group', ngdbGroup, '--to-earliest', '--by-duration', '2h'],
        'LT_REPLAY_INVALID',
        'not --to-earliest and --by-duration',
      );
      await refused(
        ['--group', ngdbGroup, '--to-datetime', '2026-12-01 08:00'],
        'LT_REPLAY_INVALID',
        'with its zone',
      );
    });

    it('a time before the start of a trimmed log (naming the earliest offset it still holds), and an offset ahead of the group', async () => {
      // a topic whose first records were removed (retention does the same), read by a group of its own
      const trimmed = topics.source(`${uniqueName('t')}.trimmed`);
      const group = uniqueName('lt.ngdb.trimmed-');
      await ensureTopics(kafka, [{ topic: trimmed, partitions: 1 }]);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: trimmed,
        acks: -1,
        messages: Array.from({ length: 10 }, (_, index) => ({ key: `k${index}`, value: `v${index}` })),
      });
      await producer.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.setOffsets({
          groupId: group,
          topic: trimmed,
          partitions: [{ partition: 0, offset: '8' }],
        });
        await admin.deleteTopicRecords({ topic: trimmed, partitions: [{ partition: 0, offset: '6' }] });
      } finally {
        await admin.disconnect();
      }
      const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
      await refused(
        ['--group', group, '--to-datetime', hourAgo],
        'LT_BEFORE_RETAINED_LOG',
        'the earliest record it still holds is offset 6',
      );
      await refused(['--group', group, '--by-duration', '1h'], 'LT_BEFORE_RETAINED_LOG', 'offset 6');
      await refused(
        ['--group', group, '--to-offset', `${trimmed}:0:9`],
        'LT_REPLAY_INVALID',
        'would skip 1 unread record(s)',
      );
      expect(await committed(group)).toEqual([`${trimmed}:0=8`]);
      // the earliest still held is fine: it re-reads what is left
      const plan = await replay(['--group', group, '--to-earliest', '--dry-run', '--json']);
      expect(plan.code).toBe(0);
      expect((JSON.parse(plan.stdout) as ReplayPlan).partitions).toMatchObject([
        { committed: 8, to: 6, reread: 2 },
      ]);
    });

    it('limits a replay to the topics of one dataset', async () => {
      const plan = await planReplay(kafka, {
        groupId: sinkGroup,
        target: { mode: 'earliest' },
        topics: [share],
      });
      expect(new Set(plan.partitions.map((move) => move.topic))).toEqual(new Set([share]));
      await expect(
        planReplay(kafka, { groupId: sinkGroup, target: { mode: 'earliest' }, topics: [source] }),
      ).rejects.toMatchObject({ code: 'LT_TOPIC_UNKNOWN' });
      // through the command: the NGDB group of this test reads no topic of the dictionary's own citizen dataset
      await refused(
        ['--group', ngdbGroup, '--to-earliest', '--dataset', 'population.citizen'],
        'LT_TOPIC_UNKNOWN',
        'reads no topic of dataset population.citizen',
      );
    });

    it('is refused by the broker without the grants acl sync derives for it, saying so', async () => {
      if (!kafkaSecurity) return; // a plaintext broker has no ACLs to take away
      const groupRead = desiredAcls({ dictionary, agreements: [agreement] }).filter(
        (grant) => grant.principal === `User:${principals.operator}` && grant.resource === 'GROUP',
      );
      expect(groupRead.map((grant) => grant.operation)).toEqual(['READ']);
      const held = (await currentAcls(kafka)).grants;
      const without = held.filter((grant) => !groupRead.some((taken) => aclKey(taken) === aclKey(grant)));
      await reconcileAcls(kafka, without);
      try {
        await refused(['--group', ngdbGroup, '--to-earliest'], 'LT_FORBIDDEN', 'may not use the group');
      } finally {
        await reconcileAcls(kafka, held);
      }
    });

    it('left the group where it was', async () => {
      expect(await committed(ngdbGroup)).toEqual(offsets);
    });

    it('audits each refusal with its code', async () => {
      const trail = await operatorAuditTrail(platformPool, { action: 'replay', limit: 30 });
      const codes = trail.filter((entry) => entry.outcome === 'refused').map((entry) => entry.detail.code);
      expect(codes).toEqual(
        expect.arrayContaining([
          'LT_GROUP_ACTIVE',
          'LT_GROUP_UNKNOWN',
          'LT_DATASET_UNKNOWN',
          'LT_TOPIC_UNKNOWN',
          'LT_OFFSET_OUT_OF_RANGE',
          'LT_REPLAY_INVALID',
          'LT_BEFORE_RETAINED_LOG',
          ...(kafkaSecurity ? ['LT_FORBIDDEN'] : []),
        ]),
      );
    });
  });
});
