// Load generator for the HTTP-ingest benchmark: builds NDJSON bodies first, then times only the posting.
import { sampleCitizens } from '../producers/sample/citizens.ts';

const events = Number(process.env.BENCH_EVENTS ?? 200_000);
const batch = Number(process.env.BENCH_BATCH ?? 2_000);
const citizens = sampleCitizens(events, 278);
const bodies: string[] = [];
for (let i = 0; i < citizens.length; i += batch) {
  bodies.push(
    citizens
      .slice(i, i + batch)
      .map((after) => JSON.stringify({ op: 'CREATE', version: 1, after }))
      .join('\n'),
  );
}
const post = async (body: string): Promise<void> => {
  const response = await fetch(process.env.BENCH_URL!, {
    method: 'POST',
    headers: { authorization: `Bearer ${process.env.BENCH_TOKEN}`, 'content-type': 'application/x-ndjson' },
    body,
  });
  if (response.status !== 200)
    throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 500)}`);
};
const started = performance.now();
let inFlight: Promise<void> = Promise.resolve();
for (const body of bodies) {
  const sent = post(body);
  await inFlight;
  inFlight = sent;
}
await inFlight;
console.log(`LOAD ${JSON.stringify({ seconds: (performance.now() - started) / 1000 })}`);
