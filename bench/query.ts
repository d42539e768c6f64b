// The query benchmark (issue 12, decree method (a)). Not a test: it prints figures.
//   node bench/query.ts                         # 100,000 citizens, 500 GETs/s for 20 s
//   BENCH_CITIZENS=20000 BENCH_RATE=1000 BENCH_SECONDS=10 node bench/query.ts
// Fills an NGDB schema of its own with sample citizens through the NGDB sink's statements, serves the query
// API over TLS (a CA and credentials of its own, in a temporary LIENTHONG_HOME) with its audit and its rate
// limit in Redis, and runs the load generator (bench/query-load.ts) in another process: single-key GETs of
// Hà Nội citizens as UBND-HN, at a steady rate, over keep-alive connections. Prints p50/p99 and the rate.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEnv } from '../infra/config/options.ts';
import { credentialsUnder } from '../infra/http/principal-auth.ts';
import { createHttpServer, listen } from '../infra/http/server.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { migrate } from '../infra/postgres/migrate.ts';
import { createPool, quoteIdent } from '../infra/postgres/pool.ts';
import { createRedis } from '../infra/redis/client.ts';
import { platformServerTls } from '../infra/security/pki.ts';
import { caFile, newPassword, writeCredential } from '../infra/security/principals.ts';
import { AgreementStore } from '../platform/agreements/index.ts';
import { registerQueryRoutes } from '../platform/query/index.ts';
import { sampleCitizens } from '../producers/sample/citizens.ts';
import { loadDictionary } from '../schemas/model/dictionary.ts';
import { createNgdbTables, ngdbEvent, writeNgdb } from '../test/helpers/ngdb.ts';

const count = Number(process.env.BENCH_CITIZENS ?? 100_000);
const rate = Number(process.env.BENCH_RATE ?? 500);
const seconds = Number(process.env.BENCH_SECONDS ?? 20);

const env = readEnv();

const dictionary = loadDictionary();
const dataset = dictionary.datasets.get('population.citizen')!;
const suffix = randomBytes(4).toString('hex');
const platformSchema = `bench_query_platform_${suffix}`;
const ngdbSchema = `bench_query_ngdb_${suffix}`;
const platform = await createPool({ url: env.DATABASE_URL, schema: platformSchema, max: 8 });
const ngdb = await createPool({ url: env.DATABASE_URL, schema: ngdbSchema, max: 8 });
const redis = await createRedis({
  url: env.REDIS_URL,
  cluster: env.REDIS_CLUSTER,
  keyPrefix: `bench-query-${suffix}:`,
});
const home = mkdtempSync(join(tmpdir(), 'lt-bench-query-'));
// as `lienthong query serve` logs by default (LOG_LEVEL info), into a file of the run's own
const log = createLogger('info', join(home, 'query.log'));

try {
  await migrate(platform, 'platform');
  const history = await createNgdbTables(ngdb, dataset);
  const started = performance.now();
  const citizens = sampleCitizens(count, 278);
  const at = new Date();
  for (let i = 0; i < citizens.length; i += 5_000) {
    await writeNgdb(
      ngdb,
      history,
      citizens
        .slice(i, i + 5_000)
        .map((citizen) => ngdbEvent(dataset, String(citizen.personal_id), 1, at, citizen)),
    );
  }
  await ngdb.query(`ANALYZE ${quoteIdent(history.name)}; ANALYZE ${quoteIdent(history.current.name)}`);
  console.log(
    `filled the NGDB with ${count} citizens in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  const store = new AgreementStore(platform, dictionary);
  const { id } = await store.create(
    {
      id: `bench-query-${suffix}`,
      subscriber: 'UBND-HN',
      dataset: dataset.id,
      fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'province_code', 'commune_code'],
      filter: 'province_code == "01"',
      purpose: 'benchmark',
      legalBasis: 'Decree 278/2025/ND-CP, method (a)',
      methods: ['query'],
    },
    'bench',
  );
  await store.approve(id, 'bench');
  const password = newPassword();
  writeCredential(home, { principal: 'agency.UBND-HN', password, issuedAt: new Date().toISOString() });

  const app = createHttpServer(log, platformServerTls(home, 'lt-query', '127.0.0.1'), {
    requestLogging: false, // as `lienthong query serve`
  });
  await registerQueryRoutes(app, {
    ngdb,
    platform,
    agreements: store,
    dictionary,
    check: credentialsUnder(home),
    redis,
    cursorSecret: randomBytes(32),
    options: { rateLimit: 1_000_000, rateWindowMs: 60_000 },
  });
  const url = await listen(app, 0, '127.0.0.1');
  const keys = citizens
    .filter((citizen) => citizen.province_code === '01')
    .map((citizen) => String(citizen.personal_id));

  const keysFile = join(home, 'keys.json');
  writeFileSync(keysFile, JSON.stringify(keys));
  const cpu = process.cpuUsage();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/query-load.ts'], {
      env: {
        ...process.env,
        BENCH_URL: url,
        BENCH_KEYS_FILE: keysFile,
        BENCH_RATE: String(rate),
        BENCH_SECONDS: String(seconds),
        BENCH_CA: readFileSync(caFile(home), 'utf8'),
        BENCH_AUTH: `agency.UBND-HN:${password}`,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`load generator exited ${code}`)),
    );
  });
  const line = output.split('\n').find((row) => row.startsWith('RESULT '));
  const result = JSON.parse(line?.slice('RESULT '.length) ?? '{}') as Record<string, unknown>;
  const used = process.cpuUsage(cpu);
  // the server's own CPU (this process) per request, warm-up included; the load generator reports its own
  const requests = Number(result.requests) + 200;
  result.serverCpuMsPerRequest = Number(((used.user + used.system) / 1000 / requests).toFixed(3));
  const audited = await platform.query<{ n: string }>('SELECT count(*) AS n FROM query_audit');
  const figures = { citizens: count, targetPerSecond: rate, ...result, audited: Number(audited.rows[0]!.n) };
  console.table([figures]);
  console.log(`goal: p99 < 50 ms at ${rate} requests/s — ${Number(result.p99Ms) < 50 ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify(figures)); // for bench/report.ts: its last line
  await app.close();
} finally {
  await platform.query(`DROP SCHEMA IF EXISTS ${quoteIdent(platformSchema)} CASCADE`).catch(() => undefined);
  await ngdb.query(`DROP SCHEMA IF EXISTS ${quoteIdent(ngdbSchema)} CASCADE`).catch(() => undefined);
  const left = await redis.keys(`bench-query-${suffix}:*`);
  if (left.length > 0) await redis.del(...left.map((key) => key.slice(`bench-query-${suffix}:`.length)));
  redis.disconnect();
  await platform.end();
  await ngdb.end();
  rmSync(home, { recursive: true, force: true });
}
