import { Presets, SingleBar } from 'cli-progress';
import { readEnv } from '../../infra/config/options.ts';
import { readSecretSource } from '../../infra/config/secret-source.ts';
import { LtError } from '../../infra/errors.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { SupervisedSubscription } from '../../consumers/subscription/index.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';
import {
  agentKafka,
  agentDatabaseUrl,
  agentRegistry,
  readAgentConfig,
  startAgent,
} from '../../producers/agent/index.ts';
import { runSnapshot } from '../../producers/snapshot/index.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import {
  kafkaCheck,
  postgresCheck,
  redisCheck,
  registryCheck,
  type ReadinessCheck,
  type RunningOpsServer,
} from '../../infra/observability/index.ts';
import { serveOps, type OpsFlags } from '../ops.ts';
import { printTable } from '../table.ts';
import { untilStopped } from '../until-stopped.ts';

/** `lienthong agent --agency X --config F`: runs X's Agent Node — source side and subscriptions — until Ctrl-C. */
export async function runAgent(options: { agency: string; config: string } & OpsFlags): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const config = readAgentConfig(options.config, options.agency);
  const dictionary = loadDictionary();
  const agent = await startAgent(config, dictionary, log);
  const subscriptions: SupervisedSubscription[] = [];
  let failure: LtError | null = null;
  let ops: RunningOpsServer | null = null;
  // what /ready checks: the source side's broker, database and registry, and Redis once subscriptions use it
  const checks: ReadinessCheck[] = [
    kafkaCheck(agent.kafka),
    postgresCheck(agent.pool),
    registryCheck(agent.registry),
  ];
  try {
    if (config.subscriptions.length > 0) {
      const registry = agentRegistry(config); // the same endpoint, CA and login as the source side
      const redis =
        config.redis === false
          ? null
          : await createRedis({
              ...(config.redis
                ? { url: config.redis.url, cluster: config.redis.cluster }
                : { url: env.REDIS_URL, cluster: env.REDIS_CLUSTER }),
              keyPrefix: `lt:${config.agency.toLowerCase()}:`,
              whenUnreachable: 'degrade',
              log,
            });
      if (redis) checks.push(redisCheck(redis));
      const kafka = agentKafka(config, log, 'sink'); // the same principal and TLS as the source side
      const databaseUrl = agentDatabaseUrl(config); // the same database as the source side
      // each subscription starts on its own and, while it cannot, is reported and retried: the source side
      // and the other subscriptions do not wait for it
      for (const spec of config.subscriptions) {
        subscriptions.push(
          new SupervisedSubscription(spec, {
            kafka,
            registry: createRegistryClient(registry),
            dictionary,
            databaseUrl,
            agency: config.agency,
            redis,
            log,
            metrics: agent.metrics,
          }),
        );
      }
      // a moment for the subscriptions that can start at once, so the summary below says how each one is
      await Promise.race([
        Promise.all(subscriptions.map((subscription) => subscription.started)),
        new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
      ]);
    }
    const owned = [...dictionary.datasets.values()]
      .filter((dataset) => dataset.owner === config.agency)
      .map((d) => d.id);
    console.log(
      `Agent Node of ${config.agency} is running; it may publish: ${owned.join(', ') || '(none: it owns no dataset)'}`,
    );
    if (agent.ingestUrl)
      console.log(
        `  HTTP ingest: POST ${agent.ingestUrl}/v1/datasets/{id}/changes (Bearer token; see docs/http-ingest.md)`,
      );
    if (agent.relay)
      console.log('  outbox relay: publishing lt_outbox rows in commit order (see docs/outbox-relay.md)');
    for (const { spec, state } of subscriptions) {
      const where = `${spec.agreement} (${spec.dataset}) into schema lt_share_${spec.agreement.replace(/-/g, '_')}`;
      if (state.status === 'retrying')
        console.log(
          `  cannot yet receive ${where}: ${state.code}: ${state.reason} (trying again; see the log)`,
        );
      else console.log(`  receives ${where}`);
    }
    ops = await serveOps('agent', { metrics: agent.metrics, checks, log }, options, config.ops);
    console.log('Ctrl-C stops it.');
    failure = await untilStopped(subscriptions.map((subscription) => subscription.failed));
  } finally {
    await ops?.close();
    for (const subscription of subscriptions) await subscription.stop();
    await agent.stop();
  }
  if (failure) throw failure;
}

export interface SnapshotCommandOptions {
  agency: string;
  config: string;
  dataset: string;
  from: string;
  table: string;
  versionColumn: string;
  batch: number;
  restart: boolean;
}

/** `lienthong snapshot`: publishes an existing register as SNAPSHOT events, resumable, with progress. */
export async function runSnapshotCommand(options: SnapshotCommandOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const config = readAgentConfig(options.config, options.agency);
  const dictionary = loadDictionary();
  const agent = await startAgent({ ...config, inputs: {} }, dictionary, log);
  const source = await createPool({ url: readSecretSource(options.from, '--from'), max: 2 });
  const abort = new AbortController();
  const interrupt = (): void => {
    console.log('\nstopping after the page in flight; run the same command again to resume');
    abort.abort();
  };
  process.once('SIGINT', interrupt);
  const bar = new SingleBar(
    { format: '  snapshot |{bar}| {value}/{total} rows | {rate} rows/s | ETA {eta_text}', hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  try {
    const dataset = agent.publisher.datasetFor(options.dataset);
    const result = await runSnapshot({
      publisher: agent.publisher,
      dataset,
      source: { pool: source, table: options.table, versionColumn: options.versionColumn },
      checkpoint: agent.pool,
      batchSize: options.batch,
      restart: options.restart,
      signal: abort.signal,
      log,
      onProgress: (progress) => {
        const payload = {
          rate: Math.round(progress.ratePerSecond),
          eta_text: progress.etaSeconds === null ? '…' : `${Math.ceil(progress.etaSeconds)} s`,
        };
        if (!started) bar.start(progress.total, progress.done, payload);
        started = true;
        bar.setTotal(progress.total);
        bar.update(progress.done, payload);
      },
    });
    bar.stop();
    printTable(
      ['dataset', 'source', 'outcome', 'resumed after', 'published', 'superseded', 'refused', 'seconds'],
      [
        [
          result.dataset,
          result.source,
          result.outcome,
          result.resumedAfter ?? '—',
          String(result.published),
          String(result.superseded),
          String(result.refused),
          (result.elapsedMs / 1000).toFixed(1),
        ],
      ],
    );
    for (const refusal of result.refusals)
      console.log(`  refused ${refusal.key ?? '(no key)'}: ${refusal.code}: ${refusal.message}`);
    if (result.refused > 0) {
      throw new LtError(
        'LT_RECORD_INVALID',
        `${result.refused} row(s) were refused; fix them at the source and run the snapshot again with --restart`,
      );
    }
  } finally {
    bar.stop();
    process.off('SIGINT', interrupt);
    await source.end();
    await agent.stop();
  }
}
