// The backfill-under-live-traffic benchmark (issue 13). Not a test: it prints figures.
//   node bench/backfill.ts                                  # 300,000-event history, live updates at 2,000/s
//   BENCH_HISTORY=100000 BENCH_LIVE_RATE=1000 BENCH_LIVE_SECONDS=30 node bench/backfill.ts
// BCA's history of citizens is on the source topic and BHXH's agreement A is live (coordinator + BHXH's sink
// caught up). Live updates start at a steady rate; a few seconds later agreement B (UBND-HN) is approved over
// the whole history. Figures: A's latency (occurred → committed in BHXH's copy) before B's approval and while
// B's backfill runs, and B's backfill rate (history events on B's share topic over the time it took). A
// backfill that stalls live delivery shows as A's p99 during the backfill growing to the backfill's length.
import { groupLag } from '../infra/kafka/admin.ts';
import { ensureTopics } from '../infra/kafka/admin.ts';
import { consumerGroups, topics } from '../infra/kafka/topics.ts';
import { AgreementStore } from '../platform/agreements/index.ts';
import { deadLetterTopics } from '../platform/topics/plan.ts';
import { latencyFigures, runBenchChild, startBenchPlatform, type BenchChild } from './harness.ts';
import { benchDictionary, publishBenchDataset } from './setup.ts';

const history = Number(process.env.BENCH_HISTORY ?? 300_000);
const liveRate = Number(process.env.BENCH_LIVE_RATE ?? 2_000);
const liveSeconds = Number(process.env.BENCH_LIVE_SECONDS ?? 40);
const approveAfterMs = 5_000;
const stamp = Date.now();
const datasetId = `bench-backfill-${stamp}.citizen`;
const liveAgreement = `bench-live-${stamp}`;
const newAgreement = `bench-new-${stamp}`;
const { dictionary } = benchDictionary(datasetId);
const only = { ...dictionary, datasets: new Map([[datasetId, dictionary.datasets.get(datasetId)!]]) };
console.log(
  `backfill benchmark: ${history} events of history; live updates at ${liveRate}/s for ${liveSeconds} s; a new agreement approved over the history ${approveAfterMs / 1000} s in`,
);

const bench = await startBenchPlatform('bench-backfill');
const { kafka, fresh, registryUrl, services } = bench;
const running: BenchChild[] = [];
const results: Record<string, unknown> = { history, liveRate, liveSeconds };
try {
  await ensureTopics(kafka, [{ topic: topics.source(datasetId), partitions: 6 }, ...deadLetterTopics(only)]);
  await publishBenchDataset(registryUrl, services.admin, datasetId);
  const store = new AgreementStore(await fresh('lt_bench_platform', 'platform'), only);
  const agreement = (id: string, subscriber: string): Parameters<AgreementStore['create']>[0] => ({
    id,
    subscriber,
    dataset: datasetId,
    fields: ['personal_id', 'full_name', 'birth_date', 'permanent_address'],
    purpose: 'backfill benchmark',
    legalBasis: 'Decree 278/2025/ND-CP, method (b)',
  });
  await store.create(agreement(liveAgreement, 'BHXH'), 'bench');
  await store.approve(liveAgreement, 'bench');
  const copy = await fresh(`lt_share_${liveAgreement.replace(/-/g, '_')}`);
  await fresh('lt_bench_agent_backfill', 'agent');
  const env = {
    ...bench.childEnv,
    BENCH_DATASET: datasetId,
    BENCH_AGREEMENT: liveAgreement,
    BENCH_AGENT_SCHEMA: 'lt_bench_agent_backfill',
  };
  const start = async (role: string): Promise<void> => {
    const service = runBenchChild({ ...env, BENCH_ROLE: role }, 'bench/e2e-service.ts');
    running.push(service);
    await service.ready;
  };
  const caughtUp = async (): Promise<void> => {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const behind =
        (await groupLag(kafka, consumerGroups.coordinator, topics.source(datasetId))) +
        (await groupLag(
          kafka,
          `${consumerGroups.sink('BHXH')}.${liveAgreement}`,
          topics.share(liveAgreement),
        ));
      if (behind === 0) return;
      if (Date.now() > deadline) throw new Error('agreement A did not catch up within 10 minutes');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };

  // 1. The history, and agreement A caught up on it.
  const published = await runBenchChild(
    { ...env, BENCH_EVENTS: String(history), BENCH_SEED: '278' },
    'bench/publish-sdk.ts',
  ).result;
  console.log(`  history published: ${published.eventsPerSecond}/s`);
  await start('coordinator');
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the coordinator registers the share schema
  await start('subscriber');
  await caughtUp();
  console.log('  agreement A caught up on the history');

  // 2. Live updates; B approved a few seconds in; B's share topic watched until it holds the whole history.
  const liveStart = new Date();
  const live = runBenchChild(
    {
      ...env,
      BENCH_EVENTS: String(liveRate * liveSeconds),
      BENCH_SEED: '278',
      BENCH_VERSION: '2',
      BENCH_RATE: String(liveRate),
      BENCH_BATCH: String(Math.max(1, Math.round(liveRate / 10))),
    },
    'bench/publish-sdk.ts',
  ).result;
  await new Promise((resolve) => setTimeout(resolve, approveAfterMs));
  await store.create(agreement(newAgreement, 'UBND-HN'), 'bench');
  await store.approve(newAgreement, 'bench');
  const approvedAt = new Date();
  const admin = kafka.admin();
  await admin.connect();
  let backfilledAt: Date | null = null;
  try {
    const deadline = Date.now() + 900_000;
    while (backfilledAt === null) {
      const offsets = await admin.fetchTopicOffsets(topics.share(newAgreement)).catch(() => []);
      const held = offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
      if (held >= history) backfilledAt = new Date();
      else if (Date.now() > deadline)
        throw new Error(`B's share topic holds ${held} of ${history} after 15 minutes`);
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
  const backfillSeconds = (backfilledAt.getTime() - approvedAt.getTime()) / 1000;
  console.log(
    `  B's backfill: ${history} events in ${backfillSeconds.toFixed(1)} s (${Math.round(history / backfillSeconds)}/s)`,
  );
  const delivered = await live;
  await caughtUp();
  const table = datasetId.replace(/[.-]/g, '_');
  const before = await latencyFigures(copy, table, liveStart, approvedAt);
  const during = await latencyFigures(copy, table, approvedAt, backfilledAt);
  console.log(`  A before B's approval: ${JSON.stringify(before)}`);
  console.log(`  A during B's backfill: ${JSON.stringify(during)}`);
  Object.assign(results, {
    backfill: {
      events: history,
      seconds: backfillSeconds,
      eventsPerSecond: Math.round(history / backfillSeconds),
    },
    live: { delivered: delivered.eventsPerSecond, beforeApproval: before, duringBackfill: during },
  });
} finally {
  for (const service of running) service.child.kill('SIGTERM');
  const memory = await Promise.allSettled(running.map((service) => service.result));
  results.peakRssMb = memory.map((m) =>
    m.status === 'fulfilled' ? m.value : String(m.reason).slice(0, 200),
  );
  await bench.close();
}
console.log(JSON.stringify(results));
