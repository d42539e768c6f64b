import type { Kafka } from 'kafkajs';
import { groupPositions } from '../../infra/kafka/admin.ts';
import { LtError } from '../../infra/errors.ts';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { createPool, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import { HistoryTable } from '../../schemas/postgres/history.ts';
import { NgdbSink } from '../ngdb/ngdb-sink.ts';
import { compareNgdbTable, type TableComparison } from './compare.ts';
import { fenceLiveTables, rebuildSchemas, swapTables, type RebuildSchemas } from './shadow.ts';

export interface NgdbRebuildOptions {
  /** Connected as the principal that reads the source topics (lt-ngdb). */
  kafka: Kafka;
  registry: SchemaRegistry;
  /** The NGDB's database; the rebuild opens its own connections to it. */
  databaseUrl: string;
  /** PostgreSQL schema of the live NGDB (the live sink's search_path). */
  liveSchema: string;
  /** The datasets to rebuild (all of the dictionary, or the one `--dataset` names). */
  datasets: readonly Dataset[];
  /** The dictionary the datasets come from (codes, classifications the sink needs). */
  dictionary: Dictionary;
  log: Logger;
  /** The live sink's consumer group; the shadow catches up to its position. Default `lt.ngdb`. */
  liveGroupId?: string;
  /** The shadow's consumer group, reset to the start of every source topic. Default `lt.ngdb.rebuild`. */
  groupId?: string;
  /** At most this many differing keys are listed per table. Default 20. */
  differingKeysLimit?: number;
  /** How long the live tables may stay fenced while the shadow reads the last records. Default 60 s. */
  fenceTimeoutMs?: number;
  /** Called about twice a second while the shadow reads. */
  onProgress?: (progress: { done: number; total: number; step: string }) => void;
  /**
   * Called inside the fence, just before the comparison (tests use it to force a difference). Not for
   * production use.
   */
  beforeCompare?: (schemas: RebuildSchemas) => Promise<void>;
}

export interface NgdbRebuildResult {
  schemas: RebuildSchemas;
  tables: TableComparison[];
  /** Records the shadow read from the source topics. */
  records: number;
  swapped: boolean;
}

const POLL_MS = 500;

/**
 * `lienthong rebuild --sink ngdb`: a fresh NGDB copy of the given datasets, built by the NGDB sink's own code
 * (a second NgdbSink) into `<live>_rebuild` from offset 0 of each `lt.src.<dataset>`, while the live sink
 * runs; then fence, compare and swap in one transaction (docs/rebuild.md):
 *
 * 1. the shadow reads until every partition is at the end it had at the start and at the live group's position;
 * 2. one transaction locks the live tables against writes (the live sink's batch in flight finishes first,
 *    the next one waits), lets the shadow read to the end offsets of that moment — so the shadow holds every
 *    event the live copy can hold — and stops it;
 * 3. compares each table (counts and checksum of current state; history event ids), leaving out keys whose
 *    events only the shadow has stored yet;
 * 4. equal: moves the live tables to `<live>_previous` and the shadow's into the live schema, and commits.
 *    Different: rolls back, so nothing is swapped, and throws LT_REBUILD_MISMATCH with the differing keys.
 *
 * The live sink keeps its group and committed offsets: they are positions in the source topics, which the
 * swapped tables hold at least up to (the shadow is at or ahead of the live copy), and re-applying an event
 * the swapped tables already hold changes nothing (version guard, unique event id in the history).
 */
export async function rebuildNgdb(options: NgdbRebuildOptions): Promise<NgdbRebuildResult> {
  const schemas = rebuildSchemas(options.liveSchema);
  const groupId = options.groupId ?? consumerGroups.ngdbRebuild;
  const liveGroupId = options.liveGroupId ?? consumerGroups.ngdb;
  const log = options.log.child({ component: 'rebuild', sink: 'ngdb', group: groupId });
  const tables = options.datasets.map((dataset) => new HistoryTable(dataset));
  const sourceTopics = options.datasets.map((dataset) => topics.source(dataset.id));

  const admin = options.kafka.admin();
  await admin.connect();
  const database = await createPool({ url: options.databaseUrl, max: 2 });
  let shadowPool: Pool | null = null;
  let sink: NgdbSink | null = null;
  try {
    await refuseWhileRunning(admin, groupId);
    await checkLiveTables(database, schemas, tables);
    for (const topic of sourceTopics) await admin.resetOffsets({ groupId, topic, earliest: true });
    await database.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schemas.shadow)} CASCADE`);
    shadowPool = await createPool({ url: options.databaseUrl, schema: schemas.shadow, max: 4 });
    sink = new NgdbSink({
      kafka: options.kafka,
      registry: options.registry,
      pool: shadowPool,
      dictionary: { ...options.dictionary, datasets: new Map(options.datasets.map((d) => [d.id, d])) },
      redis: null,
      groupId,
      log: options.log,
    });
    await sink.start();
    log.info({ schemas, topics: sourceTopics }, 'rebuild started');

    const startEnds = await endOffsets(options.kafka, groupId, sourceTopics);
    await untilCaughtUp(options, groupId, sourceTopics, sink, (topic, partition) =>
      Math.max(startEnds.get(`${topic}:${partition}`) ?? 0, 0),
    );
    const liveCommitted = await committedOffsets(options.kafka, liveGroupId, sourceTopics);
    await untilCaughtUp(
      options,
      groupId,
      sourceTopics,
      sink,
      (topic, partition) => liveCommitted.get(`${topic}:${partition}`) ?? 0,
    );
    log.info('shadow caught up with the live sink; fencing the live tables to compare');

    const client = await database.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '30s'`);
      await fenceLiveTables(client, schemas, tables);
      const fenceEnds = await endOffsets(options.kafka, groupId, sourceTopics);
      await untilCaughtUp(
        options,
        groupId,
        sourceTopics,
        sink,
        (topic, partition) => fenceEnds.get(`${topic}:${partition}`) ?? 0,
        options.fenceTimeoutMs ?? 60_000,
      );
      await sink.stop();
      const records = sink.stats.received;
      sink = null;
      await options.beforeCompare?.(schemas);
      const compared: TableComparison[] = [];
      for (const table of tables)
        compared.push(await compareNgdbTable(client, table, schemas, options.differingKeysLimit ?? 20));
      const different = compared.filter((table) => !table.equal);
      if (different.length > 0) {
        await client.query('ROLLBACK');
        log.error({ different }, 'rebuilt copy differs from the live copy; nothing swapped');
        throw new LtError(
          'LT_REBUILD_MISMATCH',
          `the rebuilt copy differs from the live NGDB in ${different.map((t) => t.table).join(', ')}; ` +
            `differing keys: ${different.flatMap((t) => t.differingKeys).join(', ')}`,
          {
            details: { schemas, tables: compared },
            hint:
              `nothing was swapped; the shadow stays in schema ${schemas.shadow} for inspection. A live row that ` +
              'differs from what its events say was changed outside the sink: find out why before rebuilding again',
          },
        );
      }
      await swapTables(client, schemas, tables);
      await client.query('COMMIT');
      log.info({ tables: compared }, 'rebuilt copy compared equal and was swapped in');
      await database.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schemas.shadow)} CASCADE`);
      return { schemas, tables: compared, records, swapped: true };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  } finally {
    if (sink) await sink.stop().catch(() => undefined);
    if (shadowPool) await shadowPool.end().catch(() => undefined);
    await database.end().catch(() => undefined);
    await admin.disconnect();
  }
}

/** Two rebuilds of one sink would share the shadow group and schema: the second is refused. */
async function refuseWhileRunning(admin: ReturnType<Kafka['admin']>, groupId: string): Promise<void> {
  const { groups } = await admin.describeGroups([groupId]);
  const members = groups[0]?.members.length ?? 0;
  if (members > 0)
    throw new LtError(
      'LT_REBUILD_BUSY',
      `a rebuild is already running (group ${groupId} has ${members} member(s))`,
      {
        hint: 'wait for it to finish (lienthong status shows it), or stop that lienthong rebuild process',
      },
    );
}

/** The live NGDB must hold every table it rebuilds: a rebuild replaces a copy, it does not make a first one. */
async function checkLiveTables(
  pool: Pool,
  schemas: RebuildSchemas,
  tables: readonly HistoryTable[],
): Promise<void> {
  const names = tables.flatMap((table) => [table.current.name, table.name]);
  const { rows } = await pool.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2)`,
    [schemas.live, names],
  );
  const found = new Set(rows.map((row) => row.name));
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0)
    throw new LtError(
      'LT_SINK_UNKNOWN',
      `the NGDB in schema ${schemas.live} has no table ${missing.join(', ')}: there is no live copy to rebuild`,
      {
        details: { schema: schemas.live, missing },
        hint: 'check --schema (the schema lienthong ngdb writes to); a dataset the NGDB never stored needs no rebuild: start lienthong ngdb',
      },
    );
}

type Offsets = Map<string, number>;

async function endOffsets(kafka: Kafka, groupId: string, sourceTopics: string[]): Promise<Offsets> {
  const ends: Offsets = new Map();
  for (const topic of sourceTopics)
    for (const { partition, high } of await groupPositions(kafka, groupId, topic))
      ends.set(`${topic}:${partition}`, high);
  return ends;
}

async function committedOffsets(kafka: Kafka, groupId: string, sourceTopics: string[]): Promise<Offsets> {
  const committed: Offsets = new Map();
  for (const topic of sourceTopics)
    for (const position of await groupPositions(kafka, groupId, topic))
      committed.set(`${topic}:${position.partition}`, Math.max(position.committed, position.low));
  return committed;
}

/**
 * Waits until the shadow group's committed offset reaches `target` on every partition (an empty partition,
 * which it never commits, counts at its log start), reporting progress; fails if the shadow sink stops.
 */
async function untilCaughtUp(
  options: NgdbRebuildOptions,
  groupId: string,
  sourceTopics: string[],
  sink: NgdbSink,
  target: (topic: string, partition: number) => number,
  timeoutMs = Infinity,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let failure: LtError | null = null;
  void sink.failed.then((error) => (failure = error));
  for (;;) {
    if (failure) throw failure;
    let done = 0;
    let total = 0;
    let behind = 0;
    for (const topic of sourceTopics) {
      for (const { partition, low, high, committed } of await groupPositions(options.kafka, groupId, topic)) {
        const at = Math.max(committed, low);
        done += at - low;
        total += high - low;
        if (at < Math.min(target(topic, partition), high)) behind += 1;
      }
    }
    options.onProgress?.({ done, total, step: `reading ${sourceTopics.join(', ')}` });
    if (behind === 0) return;
    if (Date.now() > deadline)
      throw new LtError(
        'LT_CONSUMER_STOPPED',
        'the shadow copy did not reach the end of the source topics in time',
        {
          hint: 'nothing was swapped; run lienthong rebuild again when the live traffic is lower',
        },
      );
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
