import { readEnv } from '../../infra/config/options.ts';
import { cachedCheck, credentialsUnder } from '../../infra/http/principal-auth.ts';
import { createHttpServer, listen } from '../../infra/http/server.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { platformServerTls } from '../../infra/security/pki.ts';
import { caFile, principals } from '../../infra/security/principals.ts';
import { registerConsoleRoutes } from '../../platform/console/routes.ts';
import { gatherStatus } from '../../platform/status/index.ts';
import { consoleDeadLetters } from './dlq.ts';
import { openStatusSources } from './status.ts';

export interface ConsoleOptions {
  port: number;
  host: string;
  /** PostgreSQL schema of the agreements and the operator audit trail. */
  schema: string;
}

/**
 * `lienthong console`: the ops console — one page with agencies, datasets, agreements, the live lag of every
 * consumer group as a chart, dead-letter counts with drill-down to records and reasons, and the replays and
 * rebuilds in progress — served over TLS by the platform CA's certificate, for operators only (HTTP Basic as
 * `lt-operator` or `lt-admin`, the same credential as on the broker). It reads what `lienthong status` and
 * `lienthong dlq` read, as the operator principal.
 */
export async function runConsole(options: ConsoleOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const sources = await openStatusSources(env, options.schema, log);
  const { platform } = sources.statusSources;
  if ('failure' in platform || !sources.pool) {
    await sources.close();
    throw 'failure' in platform ? platform.failure : new Error('the platform schema could not be opened');
  }
  const app = createHttpServer(log, platformServerTls(env.LIENTHONG_HOME, 'lt-console', options.host));
  const deadLetters = consoleDeadLetters(
    env,
    { kafka: sources.kafka, pool: sources.pool, dictionary: sources.dictionary },
    log,
  );
  registerConsoleRoutes(
    app,
    {
      overview: () => gatherStatus(sources.statusSources),
      deadLetters: (topic, limit) => deadLetters.list(topic, limit),
      deadLetter: (topic, partition, offset) => deadLetters.show(topic, partition, offset),
    },
    {
      check: cachedCheck(credentialsUnder(env.LIENTHONG_HOME)),
      operators: new Set([principals.operator, principals.admin]),
    },
  );
  const url = await listen(app, options.port, options.host);
  console.log(
    `ops console at ${url}/ — TLS (trust ${caFile(env.LIENTHONG_HOME)}), sign in as ${principals.operator} with its ` +
      'credential (lienthong credentials issue lt-operator). Ctrl-C stops it.',
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await app.close();
  await sources.close();
}
