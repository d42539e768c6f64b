// Publish-benchmark path: the outbox relay. The outbox is filled first (not timed), as if the agency had
// committed BENCH_EVENTS changes; then the relay is timed from start until the outbox is drained.
import { createLogger } from '../infra/logging/logger.ts';
import { OutboxRelay } from '../producers/outbox/index.ts';
import { sampleCitizens } from '../producers/sample/citizens.ts';
import { benchPublisher } from './agent-node.ts';
import { report, trackMemory } from './measure.ts';

const events = Number(process.env.BENCH_EVENTS ?? 200_000);
const { publisher, pool, kafka, datasetId } = await benchPublisher();
const citizens = sampleCitizens(events, 278);
for (let i = 0; i < citizens.length; i += 10_000) {
  const page = citizens.slice(i, i + 10_000);
  await pool.query(
    `INSERT INTO lt_outbox (dataset, op, key, version, payload)
     SELECT $1, 'CREATE', key, 1, payload FROM unnest($2::text[], $3::jsonb[]) AS r(key, payload)`,
    [datasetId, page.map((c) => String(c.personal_id)), page.map((c) => JSON.stringify(c))],
  );
}
const memory = trackMemory();
const relay = new OutboxRelay({
  pool,
  publisher,
  kafka,
  agency: 'BCA',
  log: createLogger('error'),
  batchSize: Number(process.env.BENCH_BATCH ?? 2_000),
});
const started = performance.now();
await relay.start();
await relay.drained(600_000);
const seconds = (performance.now() - started) / 1000;
const published = relay.stats.published;
await relay.stop();
await publisher.close();
await pool.end();
if (published !== events) throw new Error(`published ${published} of ${events}`);
report({ path: 'outbox', events, seconds, eventsPerSecond: Math.round(events / seconds), ...memory() });
