import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Kafka, SASLOptions } from 'kafkajs';
import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { listen } from '../../infra/http/server.ts';
import { ensurePlatformCa, ensureServerCertificate } from '../../infra/security/pki.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient, type SchemaRegistry } from '../../schemas/registry/client.ts';
import type { RegistryEndpoint } from '../../schemas/registry/client.ts';
import { countHttpRequests } from '../../infra/observability/http-metrics.ts';
import { PipelineMetrics } from '../../infra/observability/metrics.ts';
import { createIngestServer } from '../http-ingest/index.ts';
import { OutboxRelay } from '../outbox/index.ts';
import { Publisher, VersionLedger } from '../publisher/index.ts';
import type { AgentConfig } from './config.ts';

export interface RunningAgent {
  publisher: Publisher;
  pool: Pool;
  /** The source side's Kafka client and registry client: what `/ready` checks. */
  kafka: Kafka;
  registry: SchemaRegistry;
  /** The Agent Node's metrics, shared by the source side and (through the caller) its subscriptions. */
  metrics: PipelineMetrics;
  /** Base URL of HTTP ingest, when enabled. */
  ingestUrl: string | null;
  relay: OutboxRelay | null;
  stop(): Promise<void>;
}

/** The agency's login (principal and password, the password from the environment variable the config names). */
function loginOf(config: AgentConfig): { username: string; password: string } | undefined {
  const sasl = config.kafka.sasl;
  return sasl ? { username: sasl.username, password: process.env[sasl.passwordEnv] ?? '' } : undefined;
}

function saslOf(config: AgentConfig): SASLOptions | undefined {
  const login = loginOf(config);
  return login ? ({ mechanism: config.kafka.sasl!.mechanism, ...login } as SASLOptions) : undefined;
}

/**
 * The Agent Node's Kafka client, for its source side and its subscriber side alike: the brokers, TLS (trusting
 * `kafka.caFile` when set) and SASL of its config — one principal for everything the agency does on the broker.
 */
export function agentKafka(config: AgentConfig, log: Logger, role: 'source' | 'sink'): Kafka {
  const brokers = config.kafka.brokers ?? readEnv().KAFKA_BROKERS;
  if (!brokers)
    throw new LtError(
      'LT_CONFIG_INVALID',
      'no Kafka brokers: set kafka.brokers in the config or KAFKA_BROKERS',
    );
  const sasl = saslOf(config);
  const ssl = config.kafka.caFile
    ? {
        ca: [readFileSync(expandHome(config.kafka.caFile), 'utf8')],
        rejectUnauthorized: true,
      }
    : config.kafka.ssl;
  return createKafka({
    brokers,
    clientId: `lienthong-agent-${config.agency.toLowerCase()}${role === 'sink' ? '-sink' : ''}`,
    log,
    overrides: { ssl, ...(sasl ? { sasl } : {}) },
  });
}

/**
 * The Agent Node's registry: `registry.url` (default SCHEMA_REGISTRY_URL), trusting `registry.caFile` (default
 * `kafka.caFile`, the platform CA) over https, and logging in as the same principal and password as on the broker
 * (`kafka.sasl`), since a secure registry knows principals by the credentials `lienthong credentials` issued.
 */
export function agentRegistry(config: AgentConfig): RegistryEndpoint {
  const url = config.registry.url ?? readEnv().SCHEMA_REGISTRY_URL;
  if (!url)
    throw new LtError(
      'LT_CONFIG_INVALID',
      'no schema registry: set registry.url in the config or SCHEMA_REGISTRY_URL',
    );
  const caFile = config.registry.caFile ?? config.kafka.caFile;
  return { url, auth: loginOf(config), ca: caFile ? readFileSync(expandHome(caFile), 'utf8') : undefined };
}

/** The agency's database for the Agent Node's own tables and its subscriptions' copies: `database.urlEnv`. */
export function agentDatabaseUrl(config: AgentConfig): string {
  const url =
    process.env[config.database.urlEnv] ??
    (config.database.urlEnv === 'DATABASE_URL' ? readEnv().DATABASE_URL : undefined);
  if (!url)
    throw new LtError('LT_CONFIG_INVALID', `no agency database: ${config.database.urlEnv} is not set`, {
      hint: `export ${config.database.urlEnv}=postgresql://… (the agency's PostgreSQL)`,
    });
  return url;
}

/** `~/x` → `<home directory>/x`. */
const expandHome = (path: string): string => path.replace(/^~(?=\/)/, homedir());

/**
 * The key and certificate HTTP ingest serves TLS with: the agency's own (`inputs.http.tls`), or one the platform CA
 * signs for its host, made once under `<home>/security/certs/` (infra/security/pki.ts).
 */
function ingestTls(
  http: { host: string; tls?: { certFile: string; keyFile: string } | undefined },
  home: string,
): { key: string; cert: string } {
  if (http.tls)
    return {
      key: readFileSync(expandHome(http.tls.keyFile), 'utf8'),
      cert: readFileSync(expandHome(http.tls.certFile), 'utf8'),
    };
  const name = `lt-ingest-${http.host.replace(/[^A-Za-z0-9.-]/g, '_')}`; // one certificate per host served
  const certificate = ensureServerCertificate(ensurePlatformCa(home), home, name, [
    ...new Set([http.host, '127.0.0.1', 'localhost']),
  ]);
  return { key: readFileSync(certificate.keyFile, 'utf8'), cert: readFileSync(certificate.certFile, 'utf8') };
}

/**
 * Starts an agency's Agent Node, source side: one publish path (validation, owner check, version ledger,
 * Avro, idempotent producer) and the inputs its config turns on — HTTP ingest and the outbox relay. The SDK
 * runs in the agency's own programs against the same path.
 */
export async function startAgent(
  config: AgentConfig,
  dictionary: Dictionary,
  log: Logger,
  metrics: PipelineMetrics = new PipelineMetrics(),
): Promise<RunningAgent> {
  const databaseUrl = agentDatabaseUrl(config);
  const agentLog = log.child({ component: 'agent', agency: config.agency });

  const schema =
    config.database.schema ?? `lt_agent_${config.agency.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
  const pool = await createPool({ url: databaseUrl, schema });
  await migrate(pool, 'agent');
  const kafka = agentKafka(config, log, 'source');
  const registry = createRegistryClient(agentRegistry(config));
  const publisher = new Publisher({
    kafka,
    registry,
    metrics,
    dictionary,
    agency: config.agency,
    ledger: new VersionLedger(pool),
    log,
    ...config.publisher,
  });
  await publisher.connect();

  const stops: (() => Promise<unknown>)[] = [() => publisher.close(), () => pool.end()];
  let ingestUrl: string | null = null;
  let relay: OutboxRelay | null = null;
  try {
    const http = config.inputs.http;
    if (http?.enabled) {
      const server: FastifyInstance = createIngestServer({
        publisher,
        tokens: http.tokens,
        log,
        ...(http.maxBodyBytes ? { maxBodyBytes: http.maxBodyBytes } : {}),
        ...(http.maxRecordsPerRequest ? { maxRecordsPerRequest: http.maxRecordsPerRequest } : {}),
        ...(http.insecure ? {} : { tls: ingestTls(http, readEnv().LIENTHONG_HOME) }),
      });
      if (http.insecure) agentLog.warn('INSECURE: HTTP ingest in plaintext (inputs.http.insecure)');
      countHttpRequests(server, metrics, 'ingest');
      ingestUrl = await listen(server, http.port, http.host);
      stops.unshift(() => server.close());
      agentLog.info({ url: ingestUrl }, 'HTTP ingest listening');
    }
    const outbox = config.inputs.outbox;
    if (outbox?.enabled) {
      relay = new OutboxRelay({
        pool,
        publisher,
        kafka,
        agency: config.agency,
        log,
        ...(outbox.batchSize ? { batchSize: outbox.batchSize } : {}),
        ...(outbox.pollIntervalMs ? { pollIntervalMs: outbox.pollIntervalMs } : {}),
      });
      await relay.start();
      const running = relay;
      stops.unshift(() => running.stop());
      agentLog.info({ schema }, 'outbox relay started');
    }
  } catch (error) {
    for (const stop of stops) await stop().catch(() => undefined);
    throw error;
  }
  return {
    publisher,
    pool,
    kafka,
    registry,
    metrics,
    ingestUrl,
    relay,
    stop: async () => {
      for (const stop of stops)
        await stop().catch((error: unknown) => agentLog.warn({ err: error }, 'stop failed'));
    },
  };
}
