// The end-to-end benchmark (issue: coordination and materialization). Not a test: it prints figures.
//   npm run bench:e2e                      # a 200,000-event backlog drained, then a steady 5,000 events/s phase
//   BENCH_EVENTS=50000 BENCH_STEADY_SECONDS=10 npm run bench:e2e
//   BENCH_CPU_PROF=/tmp/prof BENCH_NODE_FLAGS='…' npm run bench:e2e   # CPU profiles / Node flags per service
// Each service runs with the services' default Node flags (infra/node-flags.ts); BENCH_NODE_FLAGS come after them
// and so override them.
//   BENCH_DRAIN=together npm run bench:e2e   # every service drains the backlog at once
// BCA's Agent Node publishes population.citizen events; the coordinator derives an all-rows agreement for
// BHXH; the NGDB sink and BHXH's subscriber sink materialize them. Each runs in its own process. Figures:
// events/s materialized per sink (first to last commit, each sink draining the backlog on its own), p50/p99
// latency occurredAt → committed (meaningful in the steady phase), peak memory per process.
import { ensureTopics, groupLag } from '../infra/kafka/admin.ts';
import { deadLetterTopics } from '../platform/topics/plan.ts';
import { consumerGroups, topics } from '../infra/kafka/topics.ts';
import type { Pool } from '../infra/postgres/pool.ts';
import { AgreementStore } from '../platform/agreements/index.ts';
import { copyRate, kcatReadRate, kcatUnavailable, type Ceiling } from './ceilings.ts';
import { latencyFigures, rowsSince, runBenchChild, startBenchPlatform } from './harness.ts';
import { benchDictionary, publishBenchDataset } from './setup.ts';

const events = Number(process.env.BENCH_EVENTS ?? 200_000);
const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 20);
const steadyRate = Number(process.env.BENCH_STEADY_RATE ?? 5_000);
// BENCH_DRAIN=together: all services drain the backlog at once (their share of one host) instead of in turn
const together = process.env.BENCH_DRAIN === 'together';
// BENCH_CEILINGS=0: skip measuring the machine's ceilings (kcat's raw read of the topic, PostgreSQL's raw COPY)
const ceilings = process.env.BENCH_CEILINGS !== '0';
const stamp = Date.now();
const datasetId = `bench-e2e-${stamp}.citizen`;
const agreementId = `bench-bhxh-${stamp}`;
const { dictionary } = benchDictionary(datasetId);
const only = { ...dictionary, datasets: new Map([[datasetId, dictionary.datasets.get(datasetId)!]]) };
console.log(
  `end-to-end benchmark: ${events} events at full speed, then ${steadySeconds} s at ${steadyRate}/s; 2-core machine, broker local`,
);

const platformBench = await startBenchPlatform('bench-e2e');
const { env, services, kafka, fresh, registryUrl } = platformBench;
await ensureTopics(kafka, [{ topic: topics.source(datasetId), partitions: 6 }, ...deadLetterTopics(only)]);
await publishBenchDataset(registryUrl, services.admin, datasetId);
const platform = await fresh('lt_bench_platform', 'platform');
const store = new AgreementStore(platform, only);
await store.create(
  {
    id: agreementId,
    subscriber: 'BHXH',
    dataset: datasetId,
    fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'permanent_address'],
    purpose: 'social insurance enrolment (benchmark)',
    legalBasis: 'Decree 278/2025/ND-CP, method (b)',
  },
  'bench',
);
await store.approve(agreementId, 'bench');
const ngdb = await fresh('lt_bench_ngdb');
const copy = await fresh(`lt_share_${agreementId.replace(/-/g, '_')}`);
await fresh('lt_bench_agent_e2e', 'agent');

const childEnv = {
  ...platformBench.childEnv,
  BENCH_DATASET: datasetId,
  BENCH_AGREEMENT: agreementId,
  BENCH_AGENT_SCHEMA: 'lt_bench_agent_e2e',
};
const run = (script: string, extra: Record<string, string>): ReturnType<typeof runBenchChild> =>
  runBenchChild({ ...childEnv, ...extra }, script);

const table = datasetId.replace(/[.-]/g, '_');
// rows whose latest event occurred in the phase (the steady phase updates the first citizens to version 2)
const count = (pool: Pool, since: Date): Promise<number> => rowsSince(pool, table, since);
// Caught up = every consumer group has committed the end of its topic (the sinks commit offsets only after
// their database commit). Polling Kafka's offsets, not count(*) on the tables, keeps the measuring itself
// from loading PostgreSQL.
const groups = {
  ngdb: { group: consumerGroups.ngdb, topic: topics.source(datasetId) },
  coordinator: { group: consumerGroups.coordinator, topic: topics.source(datasetId) },
  subscriber: { group: `${consumerGroups.sink('BHXH')}.${agreementId}`, topic: topics.share(agreementId) },
};
type Role = keyof typeof groups;
async function waitForSinks(since: Date, expected: number, roles: Role[]): Promise<void> {
  const deadline = Date.now() + 600_000;
  const behind = async (): Promise<boolean> => {
    for (const role of roles)
      if ((await groupLag(kafka, groups[role].group, groups[role].topic)) > 0) return true;
    return false;
  };
  while (await behind()) {
    if (Date.now() > deadline) throw new Error('sinks did not catch up within 10 minutes');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  for (const [role, pool] of [
    ['ngdb', ngdb],
    ['subscriber', copy],
  ] as const) {
    const rows = roles.includes(role) ? await count(pool, since) : expected;
    if (rows !== expected) throw new Error(`${role} caught up but holds ${rows} of ${expected} rows`);
  }
}
async function figures(
  pool: Pool,
  since: Date,
): Promise<{ eventsPerSecond: number; p50Ms: number; p99Ms: number }> {
  const { eventsPerSecond, p50Ms, p99Ms } = await latencyFigures(pool, table, since);
  return { eventsPerSecond, p50Ms, p99Ms };
}

const results: Record<string, unknown> = { events };
const running: ReturnType<typeof run>[] = [];
try {
  // 1. Backlog: the events are published while nothing consumes them; then each sink drains them with the
  //    machine to itself — first the NGDB sink, then the coordinator with BHXH's subscriber (the copy's
  //    path) — so events/s is that sink's own capacity, not the publisher's pace or the other sink's share.
  const backlogStart = new Date();
  const publisher = await run('bench/publish-sdk.ts', { BENCH_EVENTS: String(events), BENCH_SEED: '278' })
    .result;
  console.log(`  backlog published: ${publisher.eventsPerSecond}/s`);
  const machine: { kafkaRead?: Ceiling; kafkaReadSkipped?: string; postgresCopy?: Ceiling } = {};
  const noKcat = kcatUnavailable(services.admin);
  if (ceilings && noKcat === null) {
    machine.kafkaRead = await kcatReadRate(
      services.brokers,
      services.admin,
      topics.source(datasetId),
      events,
    );
    console.log(`  ceiling: kcat reads the topic at ${machine.kafkaRead.perSecond}/s`);
  } else if (ceilings) {
    machine.kafkaReadSkipped = noKcat!;
    console.log(`  ceiling: raw read not measured: ${noKcat}`);
  }
  const start = async (role: string): Promise<void> => {
    const service = run('bench/e2e-service.ts', { BENCH_ROLE: role });
    running.push(service);
    await service.ready;
  };
  if (together) {
    await start('coordinator');
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the coordinator registers the share schema
    await Promise.all([start('ngdb'), start('subscriber')]);
    await waitForSinks(backlogStart, events, ['ngdb', 'coordinator', 'subscriber']);
  } else {
    await start('ngdb');
    await waitForSinks(backlogStart, events, ['ngdb']);
  }
  const ngdbFigures = await figures(ngdb, backlogStart);
  console.log(
    `  backlog drained by the NGDB sink${together ? '' : ' alone'}: ${JSON.stringify(ngdbFigures)}`,
  );
  if (ceilings) {
    machine.postgresCopy = await copyRate(ngdb, env.DATABASE_URL, 'lt_bench_ngdb', table);
    console.log(`  ceiling: COPY loads the same rows at ${machine.postgresCopy.perSecond}/s`);
  }
  if (!together) {
    await start('coordinator');
    await new Promise((resolve) => setTimeout(resolve, 2000)); // the coordinator registers the share schema
    await start('subscriber');
    await waitForSinks(backlogStart, events, ['coordinator', 'subscriber']);
  }
  const copyFigures = await figures(copy, backlogStart);
  console.log(`  backlog drained by the coordinator + BHXH subscriber: ${JSON.stringify(copyFigures)}`);
  results.backlog = { publisher, ngdb: ngdbFigures, subscriber: copyFigures };
  results.ceilings = machine;

  // 2. Steady: updates at a fixed rate while everything runs; latency is occurredAt → committed.
  const steadyEvents = steadySeconds * steadyRate;
  const steadyStart = new Date();
  const paced = await run('bench/publish-sdk.ts', {
    BENCH_EVENTS: String(steadyEvents),
    BENCH_SEED: '278',
    BENCH_VERSION: '2',
    BENCH_RATE: String(steadyRate),
    BENCH_BATCH: String(Math.max(1, Math.round(steadyRate / 10))),
  }).result;
  await waitForSinks(steadyStart, steadyEvents, ['ngdb', 'coordinator', 'subscriber']);
  results.steady = {
    rate: steadyRate,
    delivered: paced.eventsPerSecond,
    ngdb: await figures(ngdb, steadyStart),
    subscriber: await figures(copy, steadyStart),
  };
  console.log(
    `  steady ${steadyRate}/s (publisher delivered ${paced.eventsPerSecond}/s): NGDB ${JSON.stringify((results.steady as { ngdb: unknown }).ngdb)}; BHXH copy ${JSON.stringify((results.steady as { subscriber: unknown }).subscriber)}`,
  );
} finally {
  for (const service of running) service.child.kill('SIGTERM');
  const memory = await Promise.allSettled(running.map((service) => service.result));
  results.peakRssMb = memory.map((m) =>
    m.status === 'fulfilled' ? m.value : String(m.reason).slice(0, 200),
  );
  console.log(`  peak RSS per process: ${JSON.stringify(results.peakRssMb)}`);
  await platformBench.close();
}
console.log(JSON.stringify(results));
