import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../../consumers/ngdb/index.ts';
import { startSubscription, type RunningSubscription } from '../../../consumers/subscription/index.ts';
import { ensureTopics, groupLag } from '../../../infra/kafka/admin.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { listen } from '../../../infra/http/server.ts';
import {
  deadLetterDepthReader,
  kafkaCheck,
  opsSettings,
  PipelineMetrics,
  postgresCheck,
  redisCheck,
  registryCheck,
  startOpsServer,
  traceOfHeaders,
  type OpsService,
  type ReadinessCheck,
  type RunningOpsServer,
} from '../../../infra/observability/index.ts';
import type { Logger } from '../../../infra/logging/logger.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { createRedis } from '../../../infra/redis/client.ts';
import { caFile } from '../../../infra/security/principals.ts';
import { readFileSync } from 'node:fs';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import { Coordinator } from '../../../platform/coordinator/index.ts';
import { createIngestServer } from '../../../producers/http-ingest/index.ts';
import { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import {
  env,
  log,
  testAgentDb,
  testKafka,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

const METRICS_TOKEN = randomBytes(24).toString('hex');
const INGEST_TOKEN = randomBytes(32).toString('hex');
const CA = (): string => readFileSync(caFile(env.LIENTHONG_HOME), 'utf8');

/** A GET over TLS trusting the platform CA only, with the metrics token unless told otherwise. */
function get(url: string, token: string | null = METRICS_TOKEN): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    const request = httpsRequest(url, { ca: CA(), headers, timeout: 20_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

/**
 * The value of one Prometheus series in a scrape: the sum over the samples of `name` whose labels include
 * `labels`; undefined when there is none.
 */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value))
      total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

/** An ops server on any free port, over TLS signed by the platform CA, behind the metrics token. */
async function ops(
  service: OpsService,
  metrics: PipelineMetrics,
  checks: ReadinessCheck[],
): Promise<RunningOpsServer> {
  const server = await startOpsServer({
    service,
    metrics,
    checks,
    settings: opsSettings(service, { port: 0, checkTimeoutMs: 1_500 }, METRICS_TOKEN),
    log,
    home: env.LIENTHONG_HOME,
  });
  afterAll(() => server.close());
  return server;
}

/** A logger at debug level whose lines (parsed) are kept: what the subscriber's sink logged. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger: Logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** The real dictionary reduced to one citizen dataset under a unique id, so the NGDB sink reads only it. */
function isolated(): { dictionary: Dictionary; citizen: string } {
  const base = loadDictionary();
  const citizen = { ...getDataset(base, 'population.citizen'), id: `${uniqueName('o')}.citizen` };
  return { dictionary: { ...base, datasets: new Map([[citizen.id, citizen]]) }, citizen: citizen.id };
}

describe('every long-running service serves /metrics, /health and /ready over TLS, and traces records', () => {
  const kafka = testKafka();
  const { dictionary, citizen } = isolated();
  const citizens = sampleCitizens(120, 4242);
  const agreementId = uniqueName('obs-');
  const traceId = randomBytes(16).toString('hex');
  const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
  const agentMetrics = new PipelineMetrics();
  const coordinatorMetrics = new PipelineMetrics();
  const ngdbMetrics = new PipelineMetrics();
  const sinkLog = capturingLogger();
  const stops: (() => Promise<unknown>)[] = [];
  let agentOps: RunningOpsServer;
  let coordinatorOps: RunningOpsServer;
  let ngdbOps: RunningOpsServer;
  let subscription: RunningSubscription;
  let ngdb: NgdbSink;
  let coordinatorGroup: string;
  let ngdbPool: Awaited<ReturnType<typeof testPool>>['pool'];
  let ingestResponseTrace: string | null = null;

  beforeAll(async () => {
    const registry = await testRegistry();
    const redis = await testRedis();
    await ensureTopics(kafka, [
      { topic: topics.source(citizen), partitions: 2 },
      ...['ngdb', 'coordinator'].map((stage) => ({ topic: topics.deadLetter(stage), partitions: 1 })),
    ]);
    const { pool: platformPool } = await testPool();
    await migrate(platformPool, 'platform');
    const agreements = new AgreementStore(platformPool, dictionary);
    await agreements.create(
      {
        id: agreementId,
        subscriber: 'UBND-HN',
        dataset: citizen,
        fields: ['personal_id', 'full_name', 'province_code'],
        filter: 'province_code == "01"',
        purpose: 'observability test',
        legalBasis: 'Decree 278/2025/ND-CP, method (b)',
      },
      'test',
    );
    await agreements.approve(agreementId, 'test');

    coordinatorGroup = uniqueName('lt.coordinator.obs-');
    const coordinator = new Coordinator({
      kafka,
      registry: registry.client,
      dictionary,
      pool: platformPool,
      loadAgreements: () => agreements.list(),
      log,
      metrics: coordinatorMetrics,
      groupId: coordinatorGroup,
      refreshMs: 200,
    });
    await coordinator.start();
    stops.push(() => coordinator.stop());
    coordinatorOps = await ops('coordinator', coordinatorMetrics, [
      kafkaCheck(kafka),
      postgresCheck(platformPool),
      registryCheck(registry.client),
    ]);

    ngdbPool = (await testPool()).pool;
    ngdb = new NgdbSink({
      kafka,
      registry: registry.client,
      pool: ngdbPool,
      dictionary,
      redis,
      log,
      metrics: ngdbMetrics,
      groupId: uniqueName('lt.ngdb.obs-'),
    });
    await ngdb.start();
    stops.push(() => ngdb.stop());
    const depth = deadLetterDepthReader(kafka, () => [topics.deadLetter('ngdb')]);
    ngdbMetrics.watchDeadLetterDepth(depth.read);
    stops.push(() => depth.close());
    ngdbOps = await ops('ngdb', ngdbMetrics, [
      kafkaCheck(kafka),
      postgresCheck(ngdbPool),
      redisCheck(redis),
      registryCheck(registry.client),
    ]);

    // the Agent Node of BCA: its publisher and HTTP ingest; and the subscriber's sink, in one Agent Node too
    const { ledger, pool: agentPool } = await testAgentDb();
    await publishDictionary(registry.client, dictionary, 'BCA'); // the dictionary publisher's step
    const publisher = new Publisher({
      kafka,
      registry: registry.client,
      dictionary,
      agency: 'BCA',
      ledger,
      log,
      metrics: agentMetrics,
    });
    await publisher.connect();
    stops.push(() => publisher.close());
    const ingest = createIngestServer({
      publisher,
      tokens: [{ name: 'test', sha256: createHash('sha256').update(INGEST_TOKEN).digest('hex') }],
      log,
    });
    const ingestUrl = await listen(ingest);
    stops.push(() => ingest.close());
    subscription = await startSubscription(
      { agreement: agreementId, dataset: citizen },
      {
        kafka,
        registry: registry.client,
        dictionary,
        databaseUrl: inject('services').databaseUrl,
        agency: `UBND-HN-${uniqueName('')}`.toUpperCase(),
        redis,
        log: sinkLog.logger,
        metrics: agentMetrics,
      },
    );
    stops.unshift(async () => {
      await subscription.pool.query(`DROP SCHEMA lt_share_${agreementId.replace(/-/g, '_')} CASCADE`);
      await subscription.stop();
    });
    agentOps = await ops('agent', agentMetrics, [
      kafkaCheck(kafka),
      postgresCheck(agentPool),
      registryCheck(registry.client),
      redisCheck(redis),
    ]);

    const response = await fetch(`${ingestUrl}/v1/datasets/${citizen}/changes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json', traceparent },
      body: JSON.stringify(citizens.map((after) => ({ op: 'CREATE', version: 1, after }))),
      signal: AbortSignal.timeout(30_000),
    });
    expect(response.status).toBe(200);
    ingestResponseTrace = response.headers.get('traceparent');
    // one record nobody can decode: refused by the coordinator and the NGDB sink alike
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topics.source(citizen),
      messages: [{ key: 'x', value: Buffer.from('not a change event') }],
    });
    await producer.disconnect();

    const behind = async (): Promise<number> =>
      (await groupLag(kafka, coordinatorGroup, topics.source(citizen))) +
      (await groupLag(kafka, ngdb.groupId, topics.source(citizen))) +
      (await groupLag(kafka, subscription.sink['options'].groupId, topics.share(agreementId)));
    const deadline = Date.now() + 60_000;
    for (let round = 0; round < 2; round++) {
      while ((await behind()) > 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 300));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  });

  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  const inHanoi = citizens.filter((c) => c.province_code === '01').length;

  it('the Agent Node counts what it published and what its subscription materialized, with no lag left', async () => {
    expect(inHanoi).toBeGreaterThan(0);
    const { status, body } = await get(`${agentOps.url}/metrics`);
    expect(status).toBe(200);
    expect(sample(body, 'lienthong_produced_records_total', { dataset: citizen })).toBe(citizens.length);
    const { rows } = await subscription.pool.query<{ count: string }>(
      `SELECT count(*) FROM ${subscription.sink.table.name}`,
    );
    expect(Number(rows[0]!.count)).toBe(inHanoi);
    expect(
      sample(body, 'lienthong_materialized_records_total', { stage: 'sink', agreement: agreementId }),
    ).toBe(inHanoi);
    expect(sample(body, 'lienthong_consumed_records_total', { stage: 'sink', agreement: agreementId })).toBe(
      inHanoi,
    );
    expect(
      sample(body, 'lienthong_end_to_end_latency_seconds_count', { stage: 'sink', agreement: agreementId }),
    ).toBe(inHanoi);
    expect(
      sample(body, 'lienthong_end_to_end_latency_seconds_bucket', {
        stage: 'sink',
        agreement: agreementId,
        le: '+Inf',
      }),
    ).toBe(inHanoi);
    expect(sample(body, 'lienthong_consumer_lag_records', { stage: 'sink' })).toBe(0);
    expect(sample(body, 'lienthong_batch_records_sum', { stage: 'sink' })).toBe(inHanoi);
    expect(sample(body, 'lienthong_dedup_lookups_total', { stage: 'sink', result: 'miss' })).toBe(inHanoi);
    expect(sample(body, 'lienthong_dedup_hit_ratio', { stage: 'sink' })).toBe(0);
  });

  it('the coordinator counts what it read, shared and refused, per dataset and agreement', async () => {
    const { status, body } = await get(`${coordinatorOps.url}/metrics`);
    expect(status).toBe(200);
    expect(sample(body, 'lienthong_consumed_records_total', { stage: 'coordinator', dataset: citizen })).toBe(
      citizens.length + 1,
    );
    expect(sample(body, 'lienthong_shared_records_total', { dataset: citizen, agreement: agreementId })).toBe(
      inHanoi,
    );
    expect(
      sample(body, 'lienthong_rejected_records_total', {
        stage: 'coordinator',
        dataset: citizen,
        code: 'LT_DECODE_FAILED',
      }),
    ).toBe(1);
    expect(sample(body, 'lienthong_dead_letters_total', { topic: topics.deadLetter('coordinator') })).toBe(1);
    expect(sample(body, 'lienthong_consumer_lag_records', { group: coordinatorGroup })).toBe(0);
    expect(sample(body, 'lienthong_degraded_agreements')).toBe(0);
  });

  it('the NGDB sink counts the rows it materialized, their latency, its refusals and its DLQ depth', async () => {
    const { status, body } = await get(`${ngdbOps.url}/metrics`);
    expect(status).toBe(200);
    const table = ngdb.tables.get(topics.source(citizen))!.current.name;
    const { rows } = await ngdbPool.query<{ count: string }>(`SELECT count(*) FROM ${table}`);
    expect(Number(rows[0]!.count)).toBe(citizens.length);
    expect(sample(body, 'lienthong_materialized_records_total', { stage: 'ngdb', dataset: citizen })).toBe(
      citizens.length,
    );
    expect(
      sample(body, 'lienthong_end_to_end_latency_seconds_count', { stage: 'ngdb', dataset: citizen }),
    ).toBe(citizens.length);
    // published moments ago: every row within the hour bucket, none negative
    expect(
      sample(body, 'lienthong_end_to_end_latency_seconds_bucket', {
        stage: 'ngdb',
        dataset: citizen,
        le: '3600',
      }),
    ).toBe(citizens.length);
    expect(
      sample(body, 'lienthong_rejected_records_total', {
        stage: 'ngdb',
        dataset: citizen,
        code: 'LT_DECODE_FAILED',
      }),
    ).toBe(1);
    expect(
      sample(body, 'lienthong_dlq_depth_records', { topic: topics.deadLetter('ngdb') }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(body, 'lienthong_consumer_lag_records', { group: ngdb.groupId })).toBe(0);
    expect(sample(body, 'lienthong_dedup_lookups_total', { stage: 'ngdb' })).toBe(citizens.length);
  });

  it('each service keeps its own registry: nothing of one appears in another’s scrape', async () => {
    const { body } = await get(`${coordinatorOps.url}/metrics`);
    expect(sample(body, 'lienthong_produced_records_total')).toBeUndefined();
    expect(sample(body, 'lienthong_materialized_records_total')).toBeUndefined();
  });

  it('/metrics refuses a scrape without the token, or with another one; /health needs none', async () => {
    expect((await get(`${ngdbOps.url}/metrics`, null)).status).toBe(401);
    expect((await get(`${ngdbOps.url}/metrics`, 'not-the-token')).status).toBe(401);
    const health = await get(`${ngdbOps.url}/health`, null);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok', service: 'ngdb' });
  });

  it('/ready names every dependency it checked, all answering', async () => {
    const { status, body } = await get(`${agentOps.url}/ready`, null);
    expect(status).toBe(200);
    const answer = JSON.parse(body) as { ready: boolean; checks: { name: string; ok: boolean }[] };
    expect(answer.ready).toBe(true);
    expect(answer.checks.map((check) => [check.name, check.ok])).toEqual([
      ['kafka', true],
      ['postgres', true],
      ['registry', true],
      ['redis', true],
    ]);
  });

  it('a traceparent sent to HTTP ingest reaches the share topic and the subscriber sink’s log lines', async () => {
    expect(ingestResponseTrace).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const consumer = kafka.consumer({ groupId: uniqueName('lt.test.obs-') });
    const traces: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: topics.share(agreementId), fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const context = traceOfHeaders(message.headers);
        if (context) traces.push(context.traceId);
      },
    });
    const deadline = Date.now() + 30_000;
    while (traces.length < inHanoi && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));
    await consumer.disconnect();
    expect(traces).toHaveLength(inHanoi);
    expect(new Set(traces)).toEqual(new Set([traceId]));
    const processed = sinkLog.lines.filter((line) => line.msg === 'record processed');
    expect(processed).toHaveLength(inHanoi);
    expect(new Set(processed.map((line) => line.trace_id))).toEqual(new Set([traceId]));
  });
});

describe('/ready turns 503 when a dependency stops answering', () => {
  let redisServer: ChildProcess | null = null;

  afterAll(() => {
    redisServer?.kill('SIGKILL');
  });

  it('a Redis the test started and then stopped is named as the failed check; PostgreSQL stays ok', async () => {
    const port = await freePort();
    redisServer = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const redis = await (async () => {
      const until = Date.now() + 10_000;
      for (;;) {
        try {
          return await createRedis({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'lt:obs:' });
        } catch (error) {
          if (Date.now() > until) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    })();
    afterAll(() => redis.disconnect());
    const { pool } = await testPool();
    const server = await ops('ngdb', new PipelineMetrics(), [postgresCheck(pool), redisCheck(redis)]);

    const before = await get(`${server.url}/ready`, null);
    expect(before.status).toBe(200);

    const exited = new Promise((resolve) => redisServer!.once('exit', resolve));
    redisServer.kill('SIGTERM');
    await exited;
    redisServer = null;

    const after = await get(`${server.url}/ready`, null);
    expect(after.status).toBe(503);
    const answer = JSON.parse(after.body) as {
      ready: boolean;
      checks: { name: string; ok: boolean; error?: string }[];
    };
    expect(answer.ready).toBe(false);
    expect(answer.checks.find((check) => check.name === 'postgres')?.ok).toBe(true);
    const failed = answer.checks.find((check) => check.name === 'redis');
    expect(failed?.ok).toBe(false);
    expect(failed?.error).toBeTruthy();
    // liveness is not readiness: the process still serves
    expect((await get(`${server.url}/health`, null)).status).toBe(200);
  });
});
