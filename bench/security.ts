/**
 * `npm run bench:security`: the publish and end-to-end benchmarks with the broker's security on (TLS +
 * SCRAM-SHA-512 + ACLs, the default) and off (LIENTHONG_INSECURE=1), in one run, one after the other, and
 * their ratio. Each benchmark runs as its own process, on a fresh local broker, exactly as `npm run bench:publish`
 * and `npm run bench:e2e` do; their last output line is the JSON read here. Prints figures; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { COMMAND_NODE_FLAGS } from '../infra/node-flags.ts';

type Json = Record<string, unknown>;

function runBench(script: string, insecure: boolean): Promise<Json> {
  const mode = insecure ? 'security off' : 'security on';
  console.log(`\n${script} — ${mode}`);
  const child = spawn(process.execPath, [...COMMAND_NODE_FLAGS, `bench/${script}`], {
    env: { ...process.env, LIENTHONG_INSECURE: insecure ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const last = output.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{'))
        reject(new Error(`${script} (${mode}) failed with exit ${code}`));
      else resolve(JSON.parse(last) as Json);
    }),
  );
}

const rate = (value: unknown): number => Number((value as { eventsPerSecond?: unknown }).eventsPerSecond);
const percent = (on: number, off: number): string =>
  `${on >= off ? '+' : ''}${(((on - off) / off) * 100).toFixed(1)} %`;

const publishOn = await runBench('publish.ts', false);
const publishOff = await runBench('publish.ts', true);
const e2eOn = await runBench('e2e.ts', false);
const e2eOff = await runBench('e2e.ts', true);

const rows: [string, number, number][] = [];
const paths = (result: Json): Json[] => (result.results as Json[] | undefined) ?? [];
for (const on of paths(publishOn)) {
  const off = paths(publishOff).find((candidate) => candidate.path === on.path);
  if (off) rows.push([`publish (${String(on.path)}), events/s`, rate(on), rate(off)]);
}
const backlog = (result: Json): Json => result.backlog as Json;
rows.push(['NGDB sink drain, events/s', rate(backlog(e2eOn).ngdb), rate(backlog(e2eOff).ngdb)]);
rows.push([
  'coordinator + subscriber drain, events/s',
  rate(backlog(e2eOn).subscriber),
  rate(backlog(e2eOff).subscriber),
]);
const p99 = (result: Json): number => Number(((result.steady as Json).subscriber as Json).p99Ms);
rows.push(['steady 5,000/s copy p99, ms', p99(e2eOn), p99(e2eOff)]);

console.log('\nsecurity on (TLS + SCRAM-SHA-512 + ACLs) against off (plaintext), same machine, same run:');
console.log(`${'figure'.padEnd(44)} ${'on'.padStart(9)} ${'off'.padStart(9)}  on vs off`);
for (const [name, on, off] of rows)
  console.log(`${name.padEnd(44)} ${String(on).padStart(9)} ${String(off).padStart(9)}  ${percent(on, off)}`);
console.log(JSON.stringify({ securityOn: { publishOn, e2eOn }, securityOff: { publishOff, e2eOff } }));
