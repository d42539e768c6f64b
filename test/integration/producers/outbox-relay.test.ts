import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { IHeaders, ISocketFactory, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { createKafka } from '../../../infra/kafka/client.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import type { Logger } from '../../../infra/logging/logger.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { OutboxRelay, outboxEventId, outboxLockKey } from '../../../producers/outbox/index.ts';
import { Publisher, type VersionLedger } from '../../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../../producers/sample/citizens.ts';
import type { ChangeEvent, DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../../schemas/model/dataset.ts';
import { loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  childKafkaEnv,
  kafkaSecurity,
  log,
  testAgentDb,
  testKafka,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const AGENCY = 'BCA';
const DLQ = topics.deadLetter('ingest', AGENCY);

/** One agency database with its own dataset copy (own topic), as if each test were its own agency system. */
interface Fixture {
  dataset: Dataset;
  dictionary: Dictionary;
  topic: string;
  pool: Pool;
  schema: string;
  ledger: VersionLedger;
}

type AgencyChange =
  | { op: 'CREATE' | 'UPDATE'; version: number; after: DatasetRecord }
  | { op: 'DELETE'; version: number; key: string };

interface Seen {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

describe('the outbox relay', () => {
  const base = loadDictionary();
  const kafka = testKafka();
  const services = inject('services');
  const closers: (() => Promise<unknown>)[] = [];
  let registry: Awaited<ReturnType<typeof testRegistry>>;

  beforeAll(async () => {
    registry = await testRegistry();
    await ensureTopics(kafka, [{ topic: DLQ, partitions: 1 }]).catch(() =>
      ensureTopics(kafka, [{ topic: DLQ, partitions: 1 }]),
    );
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  async function fixture(partitions: number): Promise<Fixture> {
    const { dictionary, dataset } = isolatedDataset(base, 'population.citizen');
    const topic = topics.source(dataset.id);
    await ensureTopics(kafka, [{ topic, partitions }]);
    // the dictionary publisher's step: every relay (in this process or its own) looks the schemas up
    await publishDictionary(registry.client, dictionary, 'BCA');
    const db = await testAgentDb();
    // the agency's own business table, written in the same transaction as the outbox row
    await db.pool.query(
      `CREATE TABLE citizen (personal_id text PRIMARY KEY, record jsonb, version bigint NOT NULL,
                             deleted boolean NOT NULL DEFAULT false)`,
    );
    return { dataset, dictionary, topic, ...db };
  }

  async function publisherFor(
    f: Fixture,
    extra: { kafka?: Kafka; sendTimeoutMs?: number; log?: Logger } = {},
  ): Promise<Publisher> {
    const publisher = new Publisher({
      kafka: extra.kafka ?? kafka,
      registry: registry.client,
      dictionary: f.dictionary,
      agency: AGENCY,
      ledger: f.ledger,
      log: extra.log ?? log,
      ...(extra.sendTimeoutMs ? { sendTimeoutMs: extra.sendTimeoutMs } : {}),
    });
    await publisher.connect();
    closers.push(() => publisher.close());
    return publisher;
  }

  async function startRelay(
    f: Fixture,
    publisher: Publisher,
    extra: {
      kafka?: Kafka;
      log?: Logger;
      batchSize?: number;
      pollIntervalMs?: number;
      maxBackoffMs?: number;
    } = {},
  ): Promise<OutboxRelay> {
    const relay = new OutboxRelay({
      pool: f.pool,
      publisher,
      kafka: extra.kafka ?? kafka,
      agency: AGENCY,
      log: extra.log ?? log,
      batchSize: extra.batchSize,
      pollIntervalMs: extra.pollIntervalMs ?? 200,
      maxBackoffMs: extra.maxBackoffMs,
    });
    await relay.start();
    closers.push(() => relay.stop());
    return relay;
  }

  /** An agency transaction: the business rows and their outbox rows, committed or rolled back together. */
  async function agencyTransaction(
    f: Fixture,
    changes: AgencyChange[],
    { commit = true }: { commit?: boolean } = {},
  ): Promise<void> {
    const keys = changes.map((change) =>
      change.op === 'DELETE' ? change.key : String(change.after.personal_id),
    );
    const afters = changes.map((change) => (change.op === 'DELETE' ? null : JSON.stringify(change.after)));
    const client = await f.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO citizen (personal_id, record, version, deleted)
         SELECT * FROM unnest($1::text[], $2::jsonb[], $3::bigint[], $4::boolean[])
         ON CONFLICT (personal_id) DO UPDATE
           SET record = EXCLUDED.record, version = EXCLUDED.version, deleted = EXCLUDED.deleted`,
        [keys, afters, changes.map((c) => c.version), changes.map((c) => c.op === 'DELETE')],
      );
      await client.query(
        `INSERT INTO lt_outbox (dataset, op, key, version, payload)
         SELECT $1, op, key, version, payload
           FROM unnest($2::text[], $3::text[], $4::bigint[], $5::jsonb[]) WITH ORDINALITY
                AS t(op, key, version, payload, n)
          ORDER BY n`,
        [f.dataset.id, changes.map((c) => c.op), keys, changes.map((c) => c.version), afters],
      );
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  }

  async function outboxRows(f: Fixture): Promise<
    {
      id: string;
      key: string;
      version: number;
      op: string;
      created_at: Date;
      published_at: Date | null;
      rejected_at: Date | null;
      reject_code: string | null;
      reject_reason: string | null;
    }[]
  > {
    const { rows } = await f.pool.query(
      `SELECT id, key, version::int AS version, op, created_at, published_at, rejected_at, reject_code, reject_reason
         FROM lt_outbox ORDER BY id`,
    );
    return rows;
  }

  async function counts(f: Fixture): Promise<{ rows: number; published: number; pending: number }> {
    const { rows } = await f.pool.query<{ rows: number; published: number; pending: number }>(
      `SELECT count(*)::int AS rows,
              count(*) FILTER (WHERE published_at IS NOT NULL)::int AS published,
              count(*) FILTER (WHERE published_at IS NULL AND rejected_at IS NULL)::int AS pending
         FROM lt_outbox`,
    );
    return rows[0]!;
  }

  /** Every record of a topic up to its end offsets at the time of the call, per partition in offset order. */
  async function readAll(topic: string): Promise<Seen[]> {
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const last = new Map(
      ends
        .filter((end) => Number(end.high) > Number(end.low))
        .map((end) => [end.partition, Number(end.high) - 1]),
    );
    const seen: Seen[] = [];
    if (last.size === 0) return seen;
    const done = new Set<number>();
    // a short fetch wait: disconnecting waits for the fetch in flight
    const consumer = kafka.consumer({ groupId: uniqueName('outbox-read-'), maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        if (offset > (last.get(partition) ?? -1)) return;
        seen.push({
          partition,
          offset,
          key: message.key,
          value: message.value,
          headers: message.headers ?? {},
        });
        if (offset === last.get(partition)) done.add(partition);
      },
    });
    await expect.poll(() => done.size, { timeout: 30_000 }).toBe(last.size);
    await consumer.disconnect();
    return seen;
  }

  /** The change events of a source topic (tombstones left out), in arrival order per partition. */
  async function readEvents(topic: string): Promise<(ChangeEvent & { partition: number })[]> {
    return decodeEvents(await readAll(topic));
  }

  async function decodeEvents(records: Seen[]): Promise<(ChangeEvent & { partition: number })[]> {
    const events: (ChangeEvent & { partition: number })[] = [];
    for (const record of records) {
      if (record.value === null) continue;
      events.push({
        ...((await registry.client.decode(record.value)) as ChangeEvent),
        partition: record.partition,
      });
    }
    return events;
  }

  /** Distinct eventIds, the duplicates among them, and per key the versions in first-arrival order. */
  function summarize(events: ChangeEvent[]): {
    ids: Set<string>;
    duplicates: number;
    byKey: Map<string, number[]>;
  } {
    const ids = new Set<string>();
    const byKey = new Map<string, number[]>();
    let duplicates = 0;
    for (const event of events) {
      if (ids.has(event.eventId)) {
        duplicates += 1;
        continue;
      }
      ids.add(event.eventId);
      byKey.set(event.key, [...(byKey.get(event.key) ?? []), event.version]);
    }
    return { ids, duplicates, byKey };
  }

  const header = (headers: IHeaders, name: string): string | undefined => headers[name]?.toString();

  it('publishes rows committed by agency transactions in commit order, marks them, and publishes nothing of a rolled-back transaction', async () => {
    const f = await fixture(1);
    const publisher = await publisherFor(f);
    // a poll interval far beyond the test: rows are picked up because LISTEN/NOTIFY wakes the relay
    const relay = await startRelay(f, publisher, { pollIntervalMs: 60_000 });
    expect(relay.role).toBe('leader');
    await relay.drained();

    const random = seededRandom(11);
    const citizens = sampleCitizens(12, 101);
    const [c0, c1, c2, c3] = citizens as [DatasetRecord, DatasetRecord, DatasetRecord, DatasetRecord];
    await agencyTransaction(
      f,
      citizens.slice(0, 8).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await agencyTransaction(f, [{ op: 'UPDATE', version: 2, after: relocate(c0, random) }]);
    await agencyTransaction(
      f,
      [
        { op: 'CREATE', version: 1, after: citizens[10]! },
        { op: 'UPDATE', version: 2, after: relocate(c1, random) },
      ],
      { commit: false },
    );
    await agencyTransaction(f, [
      { op: 'UPDATE', version: 2, after: relocate(c2, random) },
      { op: 'DELETE', version: 2, key: String(c3.personal_id) },
    ]);
    await agencyTransaction(f, [{ op: 'UPDATE', version: 3, after: relocate(c0, random) }]);

    // 8 + 1 + 2 + 1 rows; no poll would come within a minute, so only the notification can have woken it
    await expect.poll(async () => (await counts(f)).published, { timeout: 10_000 }).toBe(12);

    // a transaction still open while the relay drains: its row is invisible, then rolled back
    const open = await f.pool.connect();
    try {
      await open.query('BEGIN');
      await open.query(
        `INSERT INTO lt_outbox (dataset, op, key, version, payload) VALUES ($1, 'CREATE', $2, 1, $3)`,
        [f.dataset.id, String(citizens[11]!.personal_id), JSON.stringify(citizens[11])],
      );
      await relay.drained();
      await open.query('ROLLBACK');
    } finally {
      open.release();
    }
    await relay.drained();

    const rows = await outboxRows(f);
    expect(rows).toHaveLength(12);
    expect(rows.every((row) => row.published_at !== null && row.rejected_at === null)).toBe(true);

    // one partition: the topic's order is the publish order, which must be the commit (= id) order
    const records = await readAll(f.topic);
    const events = await decodeEvents(records);
    expect(events.map((event) => [event.key, event.version, event.op, event.eventId])).toEqual(
      rows.map((row) => [
        row.key,
        row.version,
        row.op,
        outboxEventId(AGENCY, f.schema, row.id, row.created_at),
      ]),
    );
    expect(events.map((event) => event.occurredAt.getTime())).toEqual(
      rows.map((row) => row.created_at.getTime()),
    );
    const rolledBack = [citizens[10]!, citizens[11]!].map((citizen) => String(citizen.personal_id));
    expect(events.filter((event) => rolledBack.includes(event.key))).toEqual([]);
    expect(events.filter((event) => event.key === String(c1.personal_id)).map((e) => e.version)).toEqual([1]);
    // the DELETE is followed by its tombstone
    expect(records.at(-2)?.value).toBeNull();
    expect(relay.stats).toMatchObject({ published: 12, rejected: 0, alreadyPublished: 0 });
  });

  it('sends a row whose record is invalid to lt.dlq.ingest with its reason, keeps it in the outbox as rejected, and publishes the rows after it', async () => {
    const f = await fixture(3);
    const relay = await startRelay(f, await publisherFor(f));
    const [a, b, c] = sampleCitizens(3, 202) as [DatasetRecord, DatasetRecord, DatasetRecord];
    // the personal ID encodes the birth year; a birth date one year later contradicts it
    const birthYear = Number(String(b.birth_date).slice(0, 4)) + 1;
    const invalid = { ...b, birth_date: `${birthYear}${String(b.birth_date).slice(4)}` };
    await agencyTransaction(f, [
      { op: 'CREATE', version: 1, after: a },
      { op: 'CREATE', version: 1, after: invalid },
      { op: 'CREATE', version: 1, after: c },
    ]);
    await agencyTransaction(f, [{ op: 'UPDATE', version: 2, after: { ...a, full_name: 'Nguyễn Văn Mới' } }]);
    await relay.drained();
    // a row repeating a version that was already published and marked is stale for real: refused, not
    // taken for a row an interrupted attempt published
    await agencyTransaction(f, [{ op: 'UPDATE', version: 2, after: { ...a, full_name: 'Trần Văn Khác' } }]);
    await relay.drained();

    const rows = await outboxRows(f);
    expect(rows.map((row) => [row.key, row.version, row.published_at !== null, row.reject_code])).toEqual([
      [a.personal_id, 1, true, null],
      [b.personal_id, 1, false, 'LT_RECORD_INVALID'],
      [c.personal_id, 1, true, null],
      [a.personal_id, 2, true, null],
      [a.personal_id, 2, false, 'LT_VERSION_STALE'],
    ]);
    const refused = rows[1]!;
    expect(refused.rejected_at).not.toBeNull();
    expect(refused.reject_reason).toContain(`birth year digits`);
    expect(refused.reject_reason).toContain(`contradict birth year ${birthYear}`);

    const mine = (await readAll(DLQ)).filter(
      (record) => header(record.headers, 'lt-source-table') === `${f.schema}.lt_outbox`,
    );
    expect(mine).toHaveLength(2);
    const [dead, stale] = mine as [Seen, Seen];
    expect(dead.key?.toString()).toBe(b.personal_id);
    expect(header(dead.headers, 'lt-error-code')).toBe('LT_RECORD_INVALID');
    expect(header(dead.headers, 'lt-error-stage')).toBe('ingest');
    expect(header(dead.headers, 'lt-error-detail')).toBe(refused.reject_reason);
    expect(header(dead.headers, 'lt-source-id')).toBe(refused.id);
    expect(header(dead.headers, 'lt-event-id')).toBe(
      outboxEventId(AGENCY, f.schema, refused.id, refused.created_at),
    );
    expect(JSON.parse(dead.value!.toString())).toMatchObject({
      id: Number(refused.id),
      dataset: f.dataset.id,
      op: 'CREATE',
      key: b.personal_id,
      version: 1,
      payload: { personal_id: b.personal_id, birth_date: invalid.birth_date },
    });
    expect(header(stale.headers, 'lt-error-code')).toBe('LT_VERSION_STALE');

    const events = await readEvents(f.topic);
    expect(events.map((event) => [event.key, event.version]).sort()).toEqual(
      [
        [a.personal_id, 1],
        [c.personal_id, 1],
        [a.personal_id, 2],
      ].sort(),
    );
    expect(events.find((event) => event.version === 2)?.after).toMatchObject({ full_name: 'Nguyễn Văn Mới' });
    expect(relay.stats).toMatchObject({ published: 3, rejected: 2, alreadyPublished: 0 });
  });

  it('marks rows an interrupted attempt published before it could mark them, without publishing them again', async () => {
    const f = await fixture(3);
    const publisher = await publisherFor(f);
    const citizens = sampleCitizens(4, 303);
    const random = seededRandom(3);
    // two versions of each key, so a refusal's lastPublished is above most rows' own version
    await agencyTransaction(
      f,
      citizens.map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await agencyTransaction(
      f,
      citizens.map((after) => ({ op: 'UPDATE', version: 2, after: relocate(after, random) })),
    );
    // what a relay does before it crashes between the acknowledgement and its commit: publish rows 1–6
    const rows = await outboxRows(f);
    const { rows: stored } = await f.pool.query<{ id: string; payload: DatasetRecord }>(
      'SELECT id, payload FROM lt_outbox ORDER BY id',
    );
    const interrupted = rows.slice(0, 6).map((row, index) => ({
      op: row.op,
      version: row.version,
      after: stored[index]!.payload,
      occurredAt: row.created_at,
      eventId: outboxEventId(AGENCY, f.schema, row.id, row.created_at),
    }));
    const first = await publisher.publishBatch(f.dataset.id, interrupted);
    expect(first.accepted).toBe(6);

    const relay = await startRelay(f, publisher);
    await relay.drained();
    expect(relay.stats).toMatchObject({ published: 2, alreadyPublished: 6, rejected: 0 });
    expect((await outboxRows(f)).every((row) => row.published_at !== null)).toBe(true);
    const events = await readEvents(f.topic);
    const { ids, duplicates, byKey } = summarize(events);
    expect(duplicates).toBe(0);
    expect(ids).toEqual(new Set(rows.map((row) => outboxEventId(AGENCY, f.schema, row.id, row.created_at))));
    for (const versions of byKey.values()) expect(versions).toEqual([1, 2]);
  });

  it('loses nothing, duplicates no row and keeps per-key order when the relay process is killed mid-stream', async () => {
    const f = await fixture(3);
    const KEYS = 800;
    const VERSIONS = 5;
    const PER_TX = 50;
    const BATCH = 100;
    const citizens = sampleCitizens(KEYS, 404);
    const transactions: AgencyChange[][] = [];
    for (let version = 1; version <= VERSIONS; version++) {
      for (let start = 0; start < KEYS; start += PER_TX) {
        transactions.push(
          citizens.slice(start, start + PER_TX).map((citizen) => ({
            op: version === 1 ? 'CREATE' : 'UPDATE',
            version,
            after:
              version === 1 ? citizen : { ...citizen, permanent_address: `${version} Đường Số ${version}` },
          })),
        );
      }
    }
    const total = KEYS * VERSIONS;

    const spawnRelay = (): { child: ChildProcess; lines: string[]; exited: Promise<void> } => {
      const child = spawn(process.execPath, ['test/helpers/run-outbox-relay.ts'], {
        cwd: ROOT,
        detached: true, // its own process group, killed as one
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          LT_DATABASE_URL: services.databaseUrl,
          LT_OUTBOX_SCHEMA: f.schema,
          ...childKafkaEnv(),
          LT_REGISTRY_URL: registry.url,
          LT_DATASET: f.dataset.id,
          LT_DATASET_FROM: 'population.citizen',
          LT_AGENCY: AGENCY,
          LT_BATCH_SIZE: String(BATCH),
          LT_POLL_MS: '200',
          LOG_LEVEL: 'info',
        },
      });
      const lines: string[] = [];
      let rest = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        const text = rest + chunk.toString();
        const parts = text.split('\n');
        rest = parts.pop() ?? '';
        lines.push(...parts);
      });
      child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
      // 'close': every process of the group that held its stdout has gone
      const exited = new Promise<void>((done) => child.once('close', () => done()));
      closers.push(async () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // the group has already gone
        }
      });
      return { child, lines, exited };
    };
    const said = (lines: string[], text: string): boolean => lines.some((line) => line.includes(text));

    const lockHolders = async (): Promise<number> => {
      const key = BigInt.asUintN(64, BigInt(outboxLockKey(f.schema)));
      const { rows } = await f.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
        [String(key >> 32n), String(key & 0xffffffffn)],
      );
      return rows[0]!.n;
    };

    const first = spawnRelay();
    await expect.poll(() => said(first.lines, 'took the outbox lock'), { timeout: 30_000 }).toBe(true);

    // the agency writes half the rows in a burst (a backlog the relay works through), then the rest at a
    // steady pace through the kill and the restart; the relay is killed once a quarter of the rows is out
    let inserted = 0;
    const writing = (async () => {
      for (const [index, changes] of transactions.entries()) {
        await agencyTransaction(f, changes);
        inserted += changes.length;
        if (index >= transactions.length / 2) await new Promise((done) => setTimeout(done, 80));
      }
    })();
    await expect
      .poll(async () => (await counts(f)).published, { timeout: 30_000, interval: 10 })
      .toBeGreaterThanOrEqual(total / 4);
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.exited;
    const atKill = await counts(f);
    // mid-stream: part published, a backlog pending, and the agency still writing
    expect(atKill.published).toBeGreaterThanOrEqual(total / 4);
    expect(atKill.pending).toBeGreaterThan(0);
    expect(atKill.rows).toBeLessThan(total);
    // the killed relay's session is gone, and its lock with it
    await expect.poll(lockHolders, { timeout: 10_000 }).toBe(0);
    const frozen = (await counts(f)).published;
    await new Promise((done) => setTimeout(done, 500));
    expect((await counts(f)).published).toBe(frozen);

    const second = spawnRelay();
    await expect.poll(() => said(second.lines, 'took the outbox lock'), { timeout: 30_000 }).toBe(true);
    const atRestart = await counts(f);
    await writing;
    expect(inserted).toBe(total);
    await expect
      .poll(async () => (await counts(f)).published, { timeout: 40_000, interval: 100 })
      .toBe(total);
    process.kill(-second.child.pid!, 'SIGTERM');
    await second.exited;
    const statsLine = second.lines.find((line) => line.includes('outbox relay stats'));
    const secondStats = statsLine ? (JSON.parse(statsLine) as { stats: Record<string, number> }).stats : {};

    const rows = await outboxRows(f);
    expect(rows.filter((row) => row.rejected_at !== null)).toEqual([]);
    const expected = new Map(
      rows.map((row) => [
        outboxEventId(AGENCY, f.schema, row.id, row.created_at),
        `${row.key}@${row.version}`,
      ]),
    );
    const events = await readEvents(f.topic);
    const { ids, duplicates, byKey } = summarize(events);
    // every committed row arrived, once by eventId, with its own key and version
    expect(ids.size).toBe(total);
    expect(ids).toEqual(new Set(expected.keys()));
    for (const event of events) expect(`${event.key}@${event.version}`).toBe(expected.get(event.eventId));
    // per key, versions arrive in increasing order (first arrival of each eventId)
    expect(byKey.size).toBe(KEYS);
    for (const versions of byKey.values()) expect(versions).toEqual([1, 2, 3, 4, 5]);
    // a re-publish can only come from the one interrupted cycle: at most one batch
    expect(duplicates).toBeLessThanOrEqual(BATCH);
    console.log(
      `outbox kill test: ${total} rows; killed at ${atKill.rows} written, ${atKill.published} published, ${atKill.pending} pending; ` +
        `restarted at ${atRestart.rows} written, ${atRestart.published} published; ` +
        `${events.length} events on the topic, ${duplicates} duplicate deliveries; second relay ${JSON.stringify(secondStats)}`,
    );
  });

  it('keeps a standby from publishing while the leader holds the lock, and lets it take over when the leader’s connection dies or it stops', async () => {
    const f = await fixture(3);
    // the leader polls slowly so that, once its session is gone, the standby is the first to try the lock
    const leader = await startRelay(f, await publisherFor(f), { pollIntervalMs: 1_000 });
    const standby = await startRelay(f, await publisherFor(f), { pollIntervalMs: 100 });
    expect(leader.role).toBe('leader');
    expect(standby.role).toBe('standby');

    const citizens = sampleCitizens(90, 505);
    const create = (list: DatasetRecord[]): AgencyChange[] =>
      list.map((after) => ({ op: 'CREATE', version: 1, after }));
    await agencyTransaction(f, create(citizens.slice(0, 50)));
    await leader.drained();
    // several standby polls have passed meanwhile
    await new Promise((done) => setTimeout(done, 500));
    expect(leader.stats.published).toBe(50);
    expect(standby.stats).toMatchObject({ published: 0, batches: 0 });
    expect(standby.role).toBe('standby');

    // the leader's database session dies (as when its host is cut off): the lock goes with it
    const key = BigInt.asUintN(64, BigInt(outboxLockKey(f.schema)));
    const { rows } = await f.pool.query<{ terminated: boolean }>(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
      [String(key >> 32n), String(key & 0xffffffffn)],
    );
    expect(rows).toEqual([{ terminated: true }]);
    await expect.poll(() => standby.role, { timeout: 10_000 }).toBe('leader');
    await expect.poll(() => leader.role, { timeout: 10_000 }).toBe('standby');

    await agencyTransaction(f, create(citizens.slice(50, 80)));
    await standby.drained();
    expect(standby.stats.published).toBe(30);
    expect(leader.stats.published).toBe(50);

    // the new leader stops: the first relay, back on a fresh session, takes over again
    await standby.stop();
    await expect.poll(() => leader.role, { timeout: 10_000 }).toBe('leader');
    await agencyTransaction(f, create(citizens.slice(80, 90)));
    await leader.drained();
    expect(leader.stats.published).toBe(60);

    const { ids, duplicates } = summarize(await readEvents(f.topic));
    expect(ids.size).toBe(90);
    expect(duplicates).toBe(0);
    expect((await counts(f)).published).toBe(90);
  });

  it('keeps rows pending while the broker is unreachable, without crashing or spinning, and publishes them when it is back', async () => {
    const f = await fixture(3);
    // the network between this Agent Node and the broker, which the test can cut and restore
    const deadPort = await freePort();
    const sockets = new Set<Socket>();
    let cut = false;
    const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
      const target = cut ? { host: '127.0.0.1', port: deadPort } : { host, port };
      const socket = ssl ? tlsConnect({ ...target, ...ssl }, onConnect) : connect(target, onConnect);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      return socket;
    };
    const lines: { level: number; msg: string }[] = [];
    const captured = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
    );
    const nodeKafka = createKafka({
      brokers: services.kafkaBrokers,
      clientId: uniqueName('outage-'),
      log: captured,
      ...(kafkaSecurity ? { security: kafkaSecurity } : {}),
      overrides: { socketFactory, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } },
    });
    const publisher = await publisherFor(f, { kafka: nodeKafka, sendTimeoutMs: 1_500, log: captured });
    const relay = await startRelay(f, publisher, { kafka: nodeKafka, log: captured, maxBackoffMs: 1_000 });
    const citizens = sampleCitizens(25, 606);
    await agencyTransaction(
      f,
      citizens.slice(0, 5).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await relay.drained();
    expect(relay.stats.published).toBe(5);

    // as when the broker goes down: open connections are reset, new ones refused
    cut = true;
    for (const socket of sockets)
      socket.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    await agencyTransaction(
      f,
      citizens.slice(5).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await new Promise((done) => setTimeout(done, 4_000));
    const during = await counts(f);
    expect(during).toEqual({ rows: 25, published: 5, pending: 20 });
    expect(relay.role).toBe('leader');
    // attempts go on, spaced by the broker wait (1.5 s) and a growing backoff: not a hot loop
    const failures = relay.stats.failedCycles;
    expect(failures).toBeGreaterThanOrEqual(2);
    expect(failures).toBeLessThanOrEqual(6);
    const warnings = lines.filter((line) => line.msg.startsWith('outbox relay cycle failed'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.level).toBe(40);

    cut = false;
    await relay.drained(30_000);
    expect(await counts(f)).toEqual({ rows: 25, published: 25, pending: 0 });
    expect(relay.stats).toMatchObject({ published: 25, rejected: 0 });
    expect(lines.some((line) => line.msg === 'outbox relay resumed')).toBe(true);

    const { ids, duplicates, byKey } = summarize(await readEvents(f.topic));
    expect(ids.size).toBe(25);
    for (const versions of byKey.values()) expect(versions).toEqual([1]);
    console.log(
      `outbox outage test: ${failures} failed cycles during the outage, ${duplicates} duplicate deliveries`,
    );
  });
});
