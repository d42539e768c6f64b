// Load generator of the query benchmark (bench/query.ts runs it in its own process): single-key GETs at a
// steady rate (open loop: a request leaves every 1/rate s whether or not earlier ones have answered), over TLS
// with keep-alive, for a fixed time; prints the latency percentiles and the rate achieved.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { report } from './measure.ts';

const url = new URL(process.env.BENCH_URL!);
const keys = JSON.parse(readFileSync(process.env.BENCH_KEYS_FILE!, 'utf8')) as string[];
const rate = Number(process.env.BENCH_RATE ?? 500);
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: process.env.BENCH_CA! });
const auth = `Basic ${Buffer.from(process.env.BENCH_AUTH!).toString('base64')}`;

function get(key: string): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const sent = request(
      {
        host: url.hostname,
        port: url.port,
        path: `/v1/query/population.citizen/${key}?purpose=bench`,
        method: 'GET',
        agent,
        headers: { authorization: auth },
      },
      (response) => {
        response.resume();
        response.on('end', () =>
          resolve({ ms: performance.now() - started, status: response.statusCode ?? 0 }),
        );
      },
    );
    sent.on('error', reject);
    sent.end();
  });
}

// warm up: connections, TLS sessions, the server's first plans
for (let i = 0; i < 200; i++) await get(keys[i % keys.length]!);

const latencies: number[] = [];
const statuses = new Map<number, number>();
const pending: Promise<void>[] = [];
const total = rate * seconds;
const started = performance.now();
const cpu = process.cpuUsage();
for (let i = 0; i < total; i++) {
  const due = started + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  pending.push(
    get(keys[Math.floor(Math.random() * keys.length)]!).then(({ ms, status }) => {
      latencies.push(ms);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }),
  );
}
await Promise.all(pending);
const elapsed = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
latencies.sort((a, b) => a - b);
const at = (q: number): number =>
  Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2));
report({
  requests: latencies.length,
  seconds: Number(elapsed.toFixed(2)),
  achievedPerSecond: Math.round(latencies.length / elapsed),
  p50Ms: at(0.5),
  p90Ms: at(0.9),
  p99Ms: at(0.99),
  maxMs: at(1),
  statuses: Object.fromEntries(statuses),
  loadCpuMsPerRequest: Number(((used.user + used.system) / 1000 / latencies.length).toFixed(3)),
});
agent.destroy();
