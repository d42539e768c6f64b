import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AssignerProtocol } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Deduplicator } from '../../../consumers/sink/dedup.ts';
import { Sink } from '../../../consumers/sink/sink.ts';
import { ensureTopics, groupPositions, waitForGroup } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { projectDataset } from '../../../schemas/model/projection.ts';
import { readShareTopic } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  childKafkaEnv,
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const services = inject('services');

const PARTITIONS = 4;
const KEYS = 2_000;
const VERSIONS = 8; // every version changes a shared field, so every source event becomes one share event
const FIELDS = ['personal_id', 'full_name', 'birth_date'];

/** One coordinator as its own process, so that it can be SIGKILLed mid-stream. */
class CoordinatorProcess {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  readonly exited: Promise<NodeJS.Signals | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['test/helpers/run-coordinator.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    });
    this.child.stdout!.on('data', (chunk: Buffer) => this.lines.push(chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => this.lines.push(chunk.toString()));
    this.exited = new Promise((done) => this.child.once('exit', (_, signal) => done(signal)));
  }

  /** The client id the coordinator's consumer joins with (run-coordinator.ts: `coordinator-<pid>`). */
  get clientId(): string {
    return `coordinator-${this.child.pid}`;
  }

  get output(): string {
    return this.lines.join('');
  }

  async started(): Promise<void> {
    await expect
      .poll(() => this.output.includes('coordinator running'), { timeout: 60_000, interval: 200 })
      .toBe(true);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

describe('several coordinators in one consumer group', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const source = topics.source(dataset.id);
  const agreementId = uniqueName('bhxh-group-');
  const groupId = uniqueName('lt.coordinator.group-');
  const coordinators: CoordinatorProcess[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  let registry: Awaited<ReturnType<typeof testRegistry>>;
  let platformSchema: string;

  beforeAll(async () => {
    registry = await testRegistry();
    const platform = await testPool();
    platformSchema = platform.schema;
    await migrate(platform.pool, 'platform');
    await ensureTopics(kafka, [{ topic: source, partitions: PARTITIONS }]);
    const store = new AgreementStore(platform.pool, dictionary);
    await store.create(
      {
        id: agreementId,
        subscriber: 'BHXH',
        dataset: dataset.id,
        fields: FIELDS,
        filter: 'true',
        purpose: 'a test of several coordinators',
        legalBasis: 'Decree 278/2025/ND-CP, method (b)',
      },
      'tester',
    );
    await store.approve(agreementId, 'tester');
  });

  afterAll(async () => {
    for (const coordinator of coordinators) coordinator.kill('SIGKILL');
    for (const stop of stops) await stop();
  });

  /** Which partitions of the source topic each member of the group holds, by client id. */
  async function assignments(): Promise<Map<string, number[]>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([groupId]);
      const members = groups[0]?.state === 'Stable' ? groups[0].members : [];
      return new Map(
        members.map((member) => [
          member.clientId,
          AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment[source] ?? [],
        ]),
      );
    } finally {
      await admin.disconnect();
    }
  }

  it('share the partitions, and one killed hands its partitions to the other with nothing lost or applied twice', async () => {
    const env = {
      LT_DATABASE_URL: services.databaseUrl,
      LT_PLATFORM_SCHEMA: platformSchema,
      ...childKafkaEnv(),
      LT_REGISTRY_URL: registry.url,
      LT_DATASET: dataset.id,
      LT_DATASET_FROM: 'population.citizen',
      LT_GROUP: groupId,
      // the survivor takes over once the killed one's session has expired
      LT_SESSION_TIMEOUT_MS: '6000',
    };
    const publisher = await testPublisher(registry.client, dictionary, 'BCA');
    await publisher.publishBatch(dataset.id, []); // the schemas exist before the coordinators start
    for (let i = 0; i < 2; i++) coordinators.push(new CoordinatorProcess(env));
    await Promise.all(coordinators.map((coordinator) => coordinator.started()));
    const [survivor, victim] = coordinators as [CoordinatorProcess, CoordinatorProcess];

    // both hold partitions: the group shares the source topic between them
    await expect
      .poll(
        async () => {
          const held = await assignments();
          return [survivor, victim].map((c) => (held.get(c.clientId) ?? []).length > 0);
        },
        { timeout: 60_000, interval: 500 },
      )
      .toEqual([true, true]);
    const before = await assignments();
    expect([...before.values()].flat().sort()).toEqual([...Array(PARTITIONS).keys()]);
    // and exactly one of them does what must happen once (end notices, position checks, retirements)
    const DUTIES = 'this coordinator does the once-only duties';
    expect(coordinators.filter((coordinator) => coordinator.output.includes(DUTIES))).toHaveLength(1);

    const citizens = sampleCitizens(KEYS, 913);
    const latest = new Map<string, DatasetRecord>();
    const publishVersion = async (version: number): Promise<void> => {
      const changes = citizens.map((citizen) => {
        const after = { ...citizen, full_name: `${String(citizen.full_name)} v${version}` };
        latest.set(String(citizen.personal_id), after);
        return { op: 'UPDATE' as const, version, after };
      });
      for (let i = 0; i < changes.length; i += 500)
        await publisher.publishBatch(dataset.id, changes.slice(i, i + 500));
    };
    let published = 0;
    const publishing = (async () => {
      for (let version = 1; version <= VERSIONS; version++) {
        await publishVersion(version);
        published = version;
      }
    })();

    // killed mid-stream, while the workload is still being published: it has derived part of its partitions'
    // records, not all
    const victimPartitions = before.get(victim.clientId) ?? [];
    const victimPositions = async () =>
      (await groupPositions(kafka, groupId, source)).filter(({ partition }) =>
        victimPartitions.includes(partition),
      );
    let atKill: Awaited<ReturnType<typeof victimPositions>> = [];
    await expect
      .poll(
        async () => {
          atKill = await victimPositions();
          return (
            published >= 1 &&
            atKill.some(({ committed }) => committed > 0) &&
            atKill.some(({ committed, high }) => committed < high)
          );
        },
        { timeout: 60_000, interval: 20 },
      )
      .toBe(true);
    victim.kill('SIGKILL');
    const publishedAtKill = published;
    expect(await victim.exited).toBe('SIGKILL');
    expect(publishedAtKill).toBeLessThan(VERSIONS); // more is published after the kill
    await publishing;

    // the survivor now holds every partition, and has derived all of them
    await expect
      .poll(async () => (await assignments()).get(survivor.clientId)?.sort(), {
        timeout: 60_000,
        interval: 500,
      })
      .toEqual([...Array(PARTITIONS).keys()]);
    expect(await waitForGroup(kafka, groupId, source, 120_000)).toBe(0);
    // the duties too: the victim's lock went with its session
    await expect.poll(() => survivor.output.includes(DUTIES), { timeout: 30_000, interval: 200 }).toBe(true);

    // the share topic: every source event's effect, once; a record repeated (a batch the victim produced but
    // had not committed, derived again by the survivor) is the very same event, which the sink's dedup and
    // version guard absorb
    const shared = await readShareTopic(kafka, registry.client, agreementId);
    const byKeyVersion = new Map<string, Set<string>>();
    for (const record of shared) {
      const id = `${record.key}/${record.version}`;
      byKeyVersion.set(id, (byKeyVersion.get(id) ?? new Set()).add(record.eventId));
    }
    expect(byKeyVersion.size).toBe(KEYS * VERSIONS);
    expect([...byKeyVersion.values()].filter((ids) => ids.size > 1)).toEqual([]);
    const repeated = shared.length - byKeyVersion.size;

    // the materialized copy: each key at its last version, with its last shared fields
    const sink = await subscriberSink(agreementId);
    await expect
      .poll(async () => waitForGroup(kafka, sink.groupId, topics.share(agreementId), 1_000), {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(0);
    const { rows } = await sink.pool.query<{ personal_id: string; full_name: string; _version: string }>(
      `SELECT personal_id, full_name, _version FROM ${sink.table.name} WHERE NOT _deleted`,
    );
    expect(rows).toHaveLength(KEYS);
    expect(rows.filter((row) => Number(row._version) !== VERSIONS)).toEqual([]);
    expect(rows.filter((row) => row.full_name !== latest.get(row.personal_id)?.full_name)).toEqual([]);
    console.log(
      `several coordinators: ${KEYS * VERSIONS} source events over ${PARTITIONS} partitions; victim held ` +
        `${JSON.stringify(victimPartitions)}, killed at ${JSON.stringify(atKill)}; share records ${shared.length} (${repeated} repeated); ` +
        `sink ${JSON.stringify(sink.stats)}`,
    );
  }, 300_000);

  async function subscriberSink(id: string) {
    const { pool } = await testPool();
    const groupId = uniqueName('lt.sink.test-');
    const sink = new Sink({
      kafka,
      registry: registry.client,
      pool,
      dataset: projectDataset(dataset, FIELDS),
      topic: topics.share(id),
      groupId,
      dedup: new Deduplicator(await testRedis(), id, 600, log),
      log,
    });
    await sink.start();
    stops.push(() => sink.stop());
    return { groupId, pool, table: sink.table, stats: sink.stats };
  }
});
