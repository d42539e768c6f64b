import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { readEnv } from '../../infra/config/options.ts';
import { credentialsUnder } from '../../infra/http/principal-auth.ts';
import { createHttpServer, listen } from '../../infra/http/server.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { platformServerTls } from '../../infra/security/pki.ts';
import { caFile } from '../../infra/security/principals.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { registerQueryRoutes } from '../../platform/query/index.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { registerOpenApiRoute } from '../openapi.ts';
import { untilStopped } from '../until-stopped.ts';

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new InvalidArgumentError('expected a port 0–65535 (0 = any free port)');
  return parsed;
}

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return parsed;
}

/**
 * The key that signs the query API's cursors, `<home>/security/query-cursor.key` (32 random bytes, mode 0600),
 * made at first start. Every instance serving the same callers must share it (a cursor from one is read by
 * another). Created with O_EXCL, so two instances starting at once agree on one key.
 */
export function cursorSecret(home: string): Buffer {
  const file = join(home, 'security', 'query-cursor.key');
  try {
    return readFileSync(file);
  } catch {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, randomBytes(32), { flag: 'wx', mode: 0o600 });
    } catch {
      // another instance made it first: use that one
    }
    return readFileSync(file);
  }
}

const HELP = `
Decree method (a): an agency's system asks the NGDB for records, and the platform answers exactly what one
of the agency's active agreements with method "query" allows — its fields, its rows — and audits every call
(table query_audit in the platform schema). The caller authenticates with HTTP Basic as its agency's
principal (agency.<code>, the credential \`lienthong credentials issue --agency <code>\` wrote); the server
speaks TLS with a certificate of the platform CA.

  GET  /v1/query/{dataset}/{key}?purpose=…[&asOf=ISO][&fields=a,b]   one record
  POST /v1/query/{dataset}?purpose=…   {"filter": "…", "fields": […], "limit": 100, "cursor": "…", "asOf": "…"}
  GET  /v1/openapi.json                                             the OpenAPI 3.1 document

Every answer carries X-Lienthong-Response-Hash; statuses, the hash, the cursor and the limits: docs/query.md.

Example (UBND-HN asks for a Hà Nội citizen):
  npx lienthong query serve --port 8083
  curl --cacert ~/.cache/lienthong/security/ca/ca.crt \\
    -u agency.UBND-HN:"$(jq -r .password ~/.cache/lienthong/security/credentials/agency.UBND-HN.json)" \\
    'https://127.0.0.1:8083/v1/query/population.citizen/001090012345?purpose=local%20administrative%20procedures'`;

interface ServeOptions {
  port: number;
  host: string;
  schema: string;
  ngdbSchema: string;
  rateLimit: number;
}

/** `lienthong query …`: the query API. */
export function queryCommand(): Command {
  const group = new Command('query')
    .description('the query API over the NGDB (decree method (a)): authenticated, agreement-bound, audited')
    .addHelpText('after', HELP);

  group
    .command('serve')
    .description(
      'serve GET /v1/query/{dataset}/{key} and POST /v1/query/{dataset} over TLS, with /v1/openapi.json',
    )
    .option('--port <port>', 'HTTPS port (0 = any free port)', port, 8083)
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--schema <name>', 'PostgreSQL schema of the agreements and of query_audit', 'lt_platform')
    .option('--ngdb-schema <name>', 'PostgreSQL schema of the NGDB (lienthong ngdb --schema)', 'lt_ngdb')
    .option('--rate-limit <n>', 'requests per agency per minute, counted in Redis', positiveInt, 600)
    .addHelpText('after', HELP)
    .action(async (options: ServeOptions) => {
      const env = readEnv();
      const log = createLogger(env.LOG_LEVEL);
      const dictionary = loadDictionary();
      const platform = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 8 });
      const ngdb = await createPool({ url: env.DATABASE_URL, schema: options.ngdbSchema, max: 8 });
      const redis = await createRedis({
        url: env.REDIS_URL,
        cluster: env.REDIS_CLUSTER,
        keyPrefix: 'lt:query:',
      });
      try {
        await migrate(platform, 'platform');
        const app = createHttpServer(
          log,
          platformServerTls(env.LIENTHONG_HOME, 'lt-query', options.host),
          { requestLogging: false }, // query_audit records every call; failures are logged
        );
        await registerQueryRoutes(app, {
          ngdb,
          platform,
          agreements: new AgreementStore(platform, dictionary),
          dictionary,
          check: credentialsUnder(env.LIENTHONG_HOME),
          redis,
          cursorSecret: cursorSecret(env.LIENTHONG_HOME),
          options: { rateLimit: options.rateLimit, rateWindowMs: 60_000 },
        });
        registerOpenApiRoute(app);
        const url = await listen(app, options.port, options.host);
        console.log(
          `query API at ${url}/v1/query — TLS (trust ${caFile(env.LIENTHONG_HOME)}), HTTP Basic as agency.<code>; ` +
            `OpenAPI at ${url}/v1/openapi.json. Ctrl-C stops it.`,
        );
        await untilStopped();
        await app.close();
      } finally {
        redis.disconnect();
        await ngdb.end();
        await platform.end();
      }
    });

  return group;
}
