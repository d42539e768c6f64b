// One publish-benchmark path, run as its own process so that its peak memory is its own:
// 200,000 (BENCH_EVENTS) citizen CREATE events through the SDK in batches of BENCH_BATCH; with BENCH_RATE
// set, paced to that many events per second (the end-to-end benchmark's steady phase). With BENCH_VERSION > 1
// they are UPDATEs that move each citizen's permanent address (a field subscribers share: the coordinator does
// not forward an update that changes no shared field).
import { LienthongSdk } from '../producers/sdk/index.ts';
import { citizenStream } from '../producers/sample/citizens.ts';
import { createLogger } from '../infra/logging/logger.ts';
import type { DatasetRecord } from '../schemas/envelope/change-event.ts';
import { benchDictionary } from './setup.ts';
import { report, trackMemory } from './measure.ts';

const events = Number(process.env.BENCH_EVENTS ?? 200_000);
const batch = Number(process.env.BENCH_BATCH ?? 2_000);
const { dictionary, datasetId } = benchDictionary(process.env.BENCH_DATASET!);
const rate = Number(process.env.BENCH_RATE ?? 0);
const version = Number(process.env.BENCH_VERSION ?? 1);
const op = version > 1 ? ('UPDATE' as const) : ('CREATE' as const);
// made batch by batch: a 1,000,000-event backlog does not fit in the service heap (SERVICE_NODE_FLAGS) at once
const citizens = citizenStream(events, Number(process.env.BENCH_SEED ?? 278));
function nextBatch(): DatasetRecord[] {
  const records: DatasetRecord[] = [];
  // next(), not for…of: leaving a for…of early would close the generator
  for (let next = citizens.next(); !next.done; next = citizens.next()) {
    const citizen = next.value;
    records.push(
      version > 1
        ? { ...citizen, permanent_address: `${String(citizen.permanent_address)}, lần ${version}` }
        : citizen,
    );
    if (records.length === batch) break;
  }
  return records;
}
const memory = trackMemory();
const sdk = await LienthongSdk.connect({
  agency: 'BCA',
  brokers: process.env.KAFKA_BROKERS!.split(','),
  registryUrl: process.env.SCHEMA_REGISTRY_URL!,
  databaseSchema: process.env.BENCH_AGENT_SCHEMA!,
  dictionary,
  log: createLogger('error'),
  publisher: { compression: (process.env.BENCH_COMPRESSION ?? 'gzip') as 'gzip' | 'none' },
});
await sdk.publishBatch(datasetId as 'population.citizen', [], {}); // warm: registers schemas, connects
const started = performance.now();
// Two batches in flight: the next one is validated and encoded while the previous waits for its ack.
let inFlight: Promise<unknown> = Promise.resolve();
for (let i = 0; i < events; i += batch) {
  if (rate > 0) {
    const due = started + (i / rate) * 1000;
    if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
  }
  const sent = sdk.publishBatch(
    datasetId as 'population.citizen',
    nextBatch().map((after) => ({ op, version, after: after as never })),
  );
  const checked = sent.then((result) => {
    if (result.rejected > 0)
      throw new Error(`refused: ${JSON.stringify(result.outcomes.find((o) => o.status === 'rejected'))}`);
  });
  await inFlight;
  inFlight = checked;
}
await inFlight;
const seconds = (performance.now() - started) / 1000;
await sdk.close();
report({ path: 'sdk', events, seconds, eventsPerSecond: Math.round(events / seconds), ...memory() });
