// Publish-benchmark path: HTTP ingest. This process is the Agent Node; a separate load process posts
// NDJSON batches (BENCH_BATCH lines, two requests in flight), so the node's peak memory is its own.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { listen } from '../infra/http/server.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { createIngestServer } from '../producers/http-ingest/index.ts';
import { benchPublisher } from './agent-node.ts';
import { report, trackMemory } from './measure.ts';

const events = Number(process.env.BENCH_EVENTS ?? 200_000);
const memory = trackMemory();
const { publisher, pool, datasetId } = await benchPublisher();
const token = 'bench-token';
const server = createIngestServer({
  publisher,
  tokens: [{ name: 'bench', sha256: createHash('sha256').update(token).digest('hex') }],
  log: createLogger('error'),
});
const url = await listen(server);
const load = spawn(process.execPath, ['bench/http-load.ts'], {
  env: { ...process.env, BENCH_URL: `${url}/v1/datasets/${datasetId}/changes`, BENCH_TOKEN: token },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let output = '';
load.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
const code = await new Promise<number>((resolve) => load.on('exit', (exit) => resolve(exit ?? 1)));
const line = output.split('\n').find((text) => text.startsWith('LOAD '));
if (code !== 0 || !line) throw new Error(`load generator failed (exit ${code}):\n${output}`);
const { seconds } = JSON.parse(line.slice(5)) as { seconds: number };
await server.close();
await publisher.close();
await pool.end();
report({ path: 'http', events, seconds, eventsPerSecond: Math.round(events / seconds), ...memory() });
