import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { readEnv } from '../../infra/config/options.ts';
import { ensureTopics, waitForGroup } from '../../infra/kafka/admin.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { listen } from '../../infra/http/server.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, quoteIdent } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { ensureServices } from '../../infra/services.ts';
import { Deduplicator } from '../../consumers/sink/dedup.ts';
import { Sink } from '../../consumers/sink/sink.ts';
import { Publisher, VersionLedger, type Change } from '../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../producers/sample/citizens.ts';
import { getDataset, loadDictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';
import { createRegistryServer } from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';
import { printTable } from '../table.ts';

export interface DemoOptions {
  citizens: number;
  batch: number;
}

const DATASET = 'population.citizen';

/**
 * The walking skeleton on real services: BCA's Agent Node publishes citizens (creates, moves, deaths,
 * ID corrections), a sink materializes them into PostgreSQL, and a summary says what went where.
 */
export async function runDemo({ citizens: count, batch }: DemoOptions): Promise<void> {
  const env = readEnv();
  // The console shows progress and the summary; the structured log goes to a file.
  const logFile = join(env.LIENTHONG_HOME, 'run', 'demo.log');
  const log = createLogger(env.LOG_LEVEL, logFile);
  const started = Date.now();
  const step = (text: string): void => console.log(`\n▸ ${text}`);

  step('starting services (Kafka, PostgreSQL, Redis)');
  const services = await ensureServices({ env, log, brokerDir: 'demo' });
  console.log(
    `  kafka ${services.brokers.join(',')}${services.localBroker ? ` (local broker, started in ${((Date.now() - started) / 1000).toFixed(1)}s; log ${services.localBroker.logFile})` : ''}`,
  );
  const cleanups: (() => Promise<unknown>)[] = [() => services.stop()];
  try {
    const kafka = createKafka({ brokers: services.brokers, clientId: 'lienthong-demo', log });
    // The demo's broker starts empty, so its registry does too (schema lt_demo_registry).
    const registryPool = await createPool({ url: env.DATABASE_URL, schema: 'lt_demo_registry' });
    cleanups.unshift(() => registryPool.end());
    await registryPool.query(
      `DROP SCHEMA ${quoteIdent('lt_demo_registry')} CASCADE; CREATE SCHEMA ${quoteIdent('lt_demo_registry')}`,
    );
    await migrate(registryPool, 'registry');
    let registryUrl = env.SCHEMA_REGISTRY_URL;
    if (!registryUrl) {
      const server = createRegistryServer(new RegistryStore(registryPool), log);
      registryUrl = await listen(server);
      cleanups.unshift(() => server.close());
    }
    console.log(`  schema registry ${registryUrl}`);
    const registry = createRegistryClient(registryUrl);

    step('loading the Shared Data Dictionary');
    const dictionary = loadDictionary();
    const dataset = getDataset(dictionary, DATASET);
    console.log(
      `  ${dictionary.datasets.size} dataset(s), ${dictionary.codeLists.size} code lists; ${dataset.id} owned by ${dataset.owner}`,
    );
    const topic = topics.source(dataset.id);
    await ensureTopics(kafka, [{ topic, partitions: 3, config: { 'retention.ms': '-1' } }]);

    step(`BCA publishes ${count} citizens and their later changes to ${topic}`);
    // BCA's Agent Node keeps its ledger of published versions in BCA's own database (here schema lt_demo_agent_bca).
    const agentPool = await createPool({ url: env.DATABASE_URL, schema: 'lt_demo_agent_bca' });
    cleanups.unshift(() => agentPool.end());
    await agentPool.query(
      `DROP SCHEMA ${quoteIdent('lt_demo_agent_bca')} CASCADE; CREATE SCHEMA ${quoteIdent('lt_demo_agent_bca')}`,
    );
    await migrate(agentPool, 'agent');
    const publisher = new Publisher({
      kafka,
      registry,
      dictionary,
      agency: dataset.owner,
      ledger: new VersionLedger(agentPool),
      log,
    });
    await publisher.connect();
    cleanups.unshift(() => publisher.close());
    const random = seededRandom(278);
    const citizens = sampleCitizens(count);
    const movers = citizens.slice(0, Math.floor(count * 0.15));
    const deaths = citizens.slice(Math.floor(count * 0.15), Math.floor(count * 0.17));
    const corrections = citizens.slice(Math.floor(count * 0.17), Math.floor(count * 0.18));
    const changes: Change[] = [
      ...citizens.map((after): Change => ({ op: 'CREATE', after, version: 1 })),
      ...movers.map((citizen): Change => ({ op: 'UPDATE', after: relocate(citizen, random), version: 2 })),
      ...deaths.map((citizen): Change => ({
        op: 'UPDATE',
        after: { ...citizen, death_date: '2026-10-01' },
        version: 2,
      })),
      // a wrong personal ID is corrected: DELETE the wrong key, CREATE the right one
      ...corrections.flatMap((citizen): Change[] => [
        { op: 'DELETE', key: String(citizen.personal_id), version: 2 },
        {
          op: 'CREATE',
          after: {
            ...citizen,
            personal_id: String(citizen.personal_id).replace(/\d{6}$/, (serial) =>
              String((Number(serial) + 1) % 1e6).padStart(6, '0'),
            ),
          },
          version: 1,
        },
      ]),
    ];
    const bar = new SingleBar(
      { format: '  publish |{bar}| {value}/{total} events | {rate}/s', hideCursor: true },
      Presets.shades_classic,
    );
    const publishStart = Date.now();
    bar.start(changes.length, 0, { rate: 0 });
    for (let i = 0; i < changes.length; i += batch) {
      const result = await publisher.publishBatch(dataset.id, changes.slice(i, i + batch));
      const refused = result.outcomes.find((outcome) => outcome.status === 'rejected');
      if (refused)
        throw new Error(`BCA's Agent Node refused a sample record: ${refused.code}: ${refused.message}`);
      const done = Math.min(i + batch, changes.length);
      bar.update(done, { rate: Math.round(done / ((Date.now() - publishStart) / 1000)) });
    }
    bar.stop();
    const publishMs = Date.now() - publishStart;

    step('the NGDB sink materializes the topic into PostgreSQL (schema lt_demo_ngdb)');
    const sinkPool = await createPool({ url: env.DATABASE_URL, schema: 'lt_demo_ngdb' });
    cleanups.unshift(() => sinkPool.end());
    await sinkPool.query(
      `DROP SCHEMA IF EXISTS ${quoteIdent('lt_demo_ngdb')} CASCADE; CREATE SCHEMA ${quoteIdent('lt_demo_ngdb')}`,
    );
    const redis = await createRedis({ url: env.REDIS_URL, keyPrefix: 'lt:demo:' });
    cleanups.unshift(async () => redis.disconnect());
    const groupId = consumerGroups.sink(`demo-${Date.now()}`);
    const sink = new Sink({
      kafka,
      registry,
      pool: sinkPool,
      dataset,
      topic,
      groupId,
      dedup: new Deduplicator(redis, groupId, 3600, log),
      log,
    });
    const sinkStart = Date.now();
    await sink.start();
    cleanups.unshift(() => sink.stop());
    const total = changes.length + corrections.length; // each DELETE is followed by a tombstone
    const sinkBar = new SingleBar(
      { format: '  sink    |{bar}| {value}/{total} records committed', hideCursor: true },
      Presets.shades_classic,
    );
    sinkBar.start(total, 0);
    const lag = await waitForGroup(kafka, groupId, topic, 120_000, (remaining) =>
      sinkBar.update(Math.max(0, total - remaining)),
    );
    sinkBar.update(total - lag);
    sinkBar.stop();
    if (lag > 0)
      throw new Error(`the sink did not catch up within 120s (${lag} records left); see the log above`);
    const sinkMs = Date.now() - sinkStart;

    step('summary: what went where');
    const byOp = new Map<string, number>();
    for (const change of changes) byOp.set(change.op, (byOp.get(change.op) ?? 0) + 1);
    printTable(
      ['source agency', 'dataset', 'topic', 'op', 'events'],
      [...byOp].map(([op, events]) => [dataset.owner, dataset.id, topic, op, String(events)]),
    );
    const provinces = new Map(
      dictionary.codeLists.get('province')?.codes.map((code) => [code.code, code.name.en]),
    );
    const { rows } = await sinkPool.query<{
      province_code: string | null;
      current: string;
      deceased: string;
      deleted: string;
    }>(
      `SELECT province_code, count(*) FILTER (WHERE NOT _deleted) AS current,
              count(*) FILTER (WHERE death_date IS NOT NULL) AS deceased, count(*) FILTER (WHERE _deleted) AS deleted
         FROM ${quoteIdent(sink.table.name)} GROUP BY province_code ORDER BY province_code NULLS LAST`,
    );
    printTable(
      ['materialized into', 'province', 'rows', 'deceased', 'deleted (kept as version tombstones)'],
      rows.map((row) => [
        `lt_demo_ngdb.${sink.table.name}`,
        row.province_code ? `${row.province_code} ${provinces.get(row.province_code) ?? ''}` : '—',
        row.current,
        row.deceased,
        row.deleted,
      ]),
    );
    printTable(
      ['figure', 'value'],
      [
        ['events published', String(changes.length)],
        ['publish rate', `${Math.round(changes.length / (publishMs / 1000))} events/s`],
        [
          'sink: rows written / skipped / stale / rejected',
          `${sink.stats.applied} / ${sink.stats.skipped} / ${sink.stats.stale} / ${sink.stats.rejected}`,
        ],
        ['sink: caught up in', `${(sinkMs / 1000).toFixed(1)} s`],
        ['demo total', `${((Date.now() - started) / 1000).toFixed(1)} s`],
        ['structured log', logFile],
      ],
    );
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}
