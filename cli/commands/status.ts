import type { Kafka } from 'kafkajs';
import { readEnv, type Env } from '../../infra/config/options.ts';
import { LtError, toLtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { createLogger, type Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, redactUrl, type Pool } from '../../infra/postgres/pool.ts';
import { kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import {
  gatherStatus,
  type PlatformStatus,
  type ServiceStatus,
  type StatusSources,
} from '../../platform/status/index.ts';
import { loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';

export interface StatusOptions {
  /** PostgreSQL schema of the agreements and the operator audit trail. */
  schema: string;
  json: boolean;
  /** How many recent operator actions to list. */
  recent: number;
}

function serviceLine(name: string, service: ServiceStatus): string {
  return `${name} ${service.at}: ${service.reachable ? 'ok' : `UNREACHABLE (${service.problem?.code ?? '?'})`}`;
}

function shortTime(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

/** The status for a person, in one terminal screen: the biggest figures first, empty dead-letter topics counted. */
function printStatus(status: PlatformStatus): void {
  console.log(`lienthong status at ${shortTime(status.at)}`);
  console.log(`  ${serviceLine('kafka', status.services.kafka)}`);
  console.log(`  ${serviceLine('postgresql', status.services.postgres)}`);

  printTable(
    ['agency', 'kind', 'owns', 'receives (active agreements)'],
    status.agencies.map((agency) => [
      agency.code,
      agency.kind,
      agency.owns.join(', ') || '—',
      status.agreements === null ? '?' : String(agency.activeAgreements),
    ]),
  );
  printTable(
    ['dataset', 'owner', 'records'],
    status.datasets.map((dataset) => [
      dataset.id,
      dataset.owner,
      dataset.records === null ? (status.groups === null ? '?' : 'no topic') : String(dataset.records),
    ]),
  );

  if (status.agreements === null) console.log('\n  agreements: unknown (PostgreSQL could not be read)');
  else if (status.agreements.length === 0) console.log('\n  agreements: none');
  else
    printTable(
      ['agreement', 'subscriber', 'dataset', 'state', 'rev'],
      status.agreements.map((agreement) => [
        agreement.id,
        agreement.subscriber,
        agreement.dataset,
        [
          agreement.status,
          ...(agreement.status === 'approved' && !agreement.active ? ['not in validity'] : []),
          ...(agreement.degraded
            ? [`DEGRADED ${agreement.degraded.code}: ${agreement.degraded.reason}`]
            : []),
        ].join(', '),
        String(agreement.revision),
      ]),
    );

  if (status.groups === null) console.log('\n  consumer groups: unknown (Kafka could not be read)');
  else if (status.groups.length === 0) console.log('\n  consumer groups: none');
  else
    printTable(
      ['consumer group', 'state', 'members', 'lag', 'topics'],
      status.groups.map((group) => [
        group.id,
        group.state,
        String(group.members),
        String(group.lag),
        group.topics
          .map(
            (topic) =>
              `${topic.topic} ${topic.lag}${topic.partitions.some((partition) => partition.belowLogStart) ? ' (BELOW LOG START: resynchronize)' : ''}`,
          )
          .join(', ') || '—',
      ]),
    );

  if (status.deadLetters === null) console.log('\n  dead letters: unknown (Kafka could not be read)');
  else {
    const holding = status.deadLetters.filter((topic) => topic.records > 0);
    if (holding.length > 0)
      printTable(
        ['dead-letter topic', 'records'],
        holding.map((topic) => [topic.topic, String(topic.records)]),
      );
    console.log(
      `\n  dead letters: ${holding.reduce((sum, topic) => sum + topic.records, 0)} record(s) in ` +
        `${holding.length} of ${status.deadLetters.length} dead-letter topic(s)`,
    );
  }

  if (status.operations === null) console.log('\n  operator actions: unknown (PostgreSQL could not be read)');
  else {
    const { inProgress, recent } = status.operations;
    const rows = (entries: typeof recent): string[][] =>
      entries.map((entry) => [
        shortTime(entry.at),
        entry.action,
        entry.target,
        entry.outcome,
        entry.principal,
      ]);
    if (inProgress.length === 0) console.log('\n  in progress: no replay, rebuild or other operator action');
    else printTable(['in progress since', 'action', 'target', 'outcome', 'principal'], rows(inProgress));
    if (recent.length > 0)
      printTable(['recent action at', 'action', 'target', 'outcome', 'principal'], rows(recent));
  }
}

/** What `status` and the ops console read, opened once: the broker as lt-operator and the platform schema. */
export interface OpenStatusSources {
  statusSources: StatusSources;
  kafka: Kafka;
  /** The platform schema's pool; undefined when PostgreSQL could not be opened (the status says why). */
  pool: Pool | undefined;
  dictionary: Dictionary;
  close(): Promise<void>;
}

/**
 * Opens what the platform status is read from: KAFKA_BROKERS as lt-operator (KAFKA_PRINCIPAL overrides; a look,
 * not a service, so an unanswering broker is reported within seconds) and the platform schema of DATABASE_URL —
 * whose failure to open is kept as the status's reason rather than thrown.
 */
export async function openStatusSources(
  env: Env,
  schema: string,
  log: Logger,
  recentActions?: number,
): Promise<OpenStatusSources> {
  if (!env.KAFKA_BROKERS)
    throw new LtError('LT_CONFIG_INVALID', 'status needs KAFKA_BROKERS (the cluster to look at)', {
      hint: 'export KAFKA_BROKERS=host:port of the platform cluster (`lienthong broker start` prints it)',
    });
  const dictionary = loadDictionary();
  const security = kafkaSecurityFor(env, principals.operator, log); // describe and read dead letters only
  const kafka = createKafka({
    brokers: env.KAFKA_BROKERS,
    clientId: 'lienthong-status',
    log,
    ...(security ? { security } : {}),
    overrides: {
      connectionTimeout: 3_000,
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
    },
  });
  const url = redactUrl(env.DATABASE_URL);
  let pool: Pool | undefined;
  let failure: LtError | undefined;
  try {
    pool = await createPool({ url: env.DATABASE_URL, schema, max: 3 });
    await migrate(pool, 'platform');
  } catch (error) {
    failure = toLtError(error);
  }
  return {
    statusSources: {
      dictionary,
      kafka: { client: kafka, brokers: env.KAFKA_BROKERS, principal: security?.username ?? 'plaintext' },
      platform: pool && !failure ? { pool, url } : { failure: failure!, url },
      ...(recentActions === undefined ? {} : { recentActions }),
    },
    kafka,
    pool: failure ? undefined : pool,
    dictionary,
    close: async () => {
      await pool?.end();
    },
  };
}

/**
 * `lienthong status [--json]`: agencies, datasets, agreements with their state, consumer-group lag, dead letters
 * and operator actions in progress (platform/status). Connects to Kafka as lt-operator (or KAFKA_PRINCIPAL) and
 * reads the platform schema of DATABASE_URL. A service that cannot be read is reported, the rest still shown,
 * and the command then fails with that service's error (exit 4 for an unreachable one; docs/cli.md).
 */
export async function runStatus(options: StatusOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'error' : env.LOG_LEVEL);
  const sources = await openStatusSources(env, options.schema, log, options.recent);
  try {
    const status = await gatherStatus(sources.statusSources);
    if (options.json) console.log(JSON.stringify(status, null, 2));
    else printStatus(status);
    const problem = status.services.kafka.problem ?? status.services.postgres.problem;
    if (problem)
      throw new LtError(problem.code, `status is incomplete: ${problem.message}`, {
        ...(problem.hint ? { hint: problem.hint } : {}),
      });
  } finally {
    await sources.close();
  }
}
