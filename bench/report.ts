// `npm run bench`: every benchmark, one after the other, each in its own process on a fresh local broker, and one
// report of them: bench/report.json (every figure each benchmark printed) and bench/report.md (the figures
// against the issues' goals and against this machine's ceilings, measured in the same run).
//   npm run bench                         # the whole run (about 20 minutes on a quiet 2-core machine)
//   BENCH_ONLY=query,packages npm run bench   # some of them (the report then holds only those)
// Runs: publish (security on, off, on, off), end to end with a 1,000,000-event backlog (drain rates, steady p99, peak
// memory under the backlog, the COPY ceiling), end to end with security off (the kcat ceiling, the security
// comparison), backfill under live traffic, query latency, packages. Prints as it goes; asserts nothing.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { COMMAND_NODE_FLAGS } from '../infra/node-flags.ts';
import { KAFKA_VERSION } from '../infra/kafka/local-broker.ts';

type Json = Record<string, unknown>;

interface Run {
  name: string;
  script: string;
  env: Record<string, string>;
}

const RUNS: Run[] = [
  // on, off, on, off: the machine's drift over minutes falls on both modes alike, and each mode's figure is its
  // better run (noise here only ever slows a run down)
  { name: 'publish', script: 'publish.ts', env: { LIENTHONG_INSECURE: '0' } },
  { name: 'publishInsecure', script: 'publish.ts', env: { LIENTHONG_INSECURE: '1' } },
  { name: 'publishAgain', script: 'publish.ts', env: { LIENTHONG_INSECURE: '0' } },
  { name: 'publishInsecureAgain', script: 'publish.ts', env: { LIENTHONG_INSECURE: '1' } },
  {
    name: 'e2e',
    script: 'e2e.ts',
    env: { LIENTHONG_INSECURE: '0', BENCH_EVENTS: process.env.BENCH_BACKLOG ?? '1000000' },
  },
  { name: 'e2eInsecure', script: 'e2e.ts', env: { LIENTHONG_INSECURE: '1', BENCH_EVENTS: '200000' } },
  { name: 'backfill', script: 'backfill.ts', env: { LIENTHONG_INSECURE: '0' } },
  { name: 'query', script: 'query.ts', env: {} },
  { name: 'packages', script: 'packages.ts', env: { BENCH_ROWS: '100000' } },
];
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const chosen = only ? RUNS.filter((run) => only.includes(run.name) || only.includes(run.script)) : RUNS;

/** Runs one benchmark, its output shown as it comes; its figures are the JSON object on its last line. */
function runBench(run: Run): Promise<Json> {
  console.log(`\n── ${run.name}: node bench/${run.script} ${JSON.stringify(run.env)}`);
  const child = spawn(process.execPath, [...COMMAND_NODE_FLAGS, `bench/${run.script}`], {
    env: { ...process.env, ...run.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
    process.stdout.write(chunk);
  });
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      const last = output.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as Json);
      else resolve({ failed: `exit ${code}; last line: ${last.slice(0, 300)}` });
    }),
  );
}

const psql = (sql: string) =>
  spawnSync('psql', ['-tA', '-c', sql], {
    encoding: 'utf8',
    env: { ...process.env, PGHOST: '127.0.0.1', PGUSER: 'postgres', PGDATABASE: 'postgres' },
  });

/** Busy share of every core over the next second (from the kernel's per-core idle counters). */
async function busyShare(): Promise<number> {
  const totals = () =>
    cpus().reduce(
      (sum, cpu) => {
        const { idle, ...rest } = cpu.times;
        return {
          idle: sum.idle + idle,
          all: sum.all + idle + Object.values(rest).reduce((a, b) => a + b, 0),
        };
      },
      { idle: 0, all: 0 },
    );
  const before = totals();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = totals();
  return 1 - (after.idle - before.idle) / Math.max(1, after.all - before.all);
}

/**
 * Before each benchmark: PostgreSQL writes out what the previous one left dirty (CHECKPOINT, so its checkpointer
 * does not do it during the next measurement), then the machine is let quiet down — 3 seconds in a row under 10 %
 * busy, at most 90 s. What it found goes into the report (a latency figure taken on a busy machine says so).
 */
async function settle(): Promise<Json> {
  const started = Date.now();
  const checkpoint = psql('CHECKPOINT').status === 0;
  let quiet = 0;
  let busy = 1;
  while (quiet < 3 && Date.now() - started < 90_000) {
    busy = await busyShare();
    quiet = busy < 0.1 ? quiet + 1 : 0;
  }
  return {
    seconds: Math.round((Date.now() - started) / 1000),
    checkpoint,
    quiet: quiet >= 3,
    lastBusyShare: Number(busy.toFixed(2)),
  };
}

const startedAt = new Date();
const loadAtStart = loadavg();
const results: Record<string, Json> = {};
for (const run of chosen) {
  const settled = await settle();
  console.log(
    `\n(settled in ${String(settled.seconds)} s: ${settled.quiet ? 'quiet' : `still ${String(settled.lastBusyShare)} busy`})`,
  );
  results[run.name] = { ...(await runBench(run)), settled };
}
const loadAtEnd = loadavg();

const postgres = psql('SHOW server_version');
const machine = {
  date: startedAt.toISOString(),
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  kafka: KAFKA_VERSION,
  postgres: postgres.status === 0 ? postgres.stdout.trim() : 'unknown',
  loadAverage: { start: loadAtStart.map((x) => x.toFixed(2)), end: loadAtEnd.map((x) => x.toFixed(2)) },
  minutes: Math.round((Date.now() - startedAt.getTime()) / 600) / 100,
};
writeFileSync('bench/report.json', `${JSON.stringify({ machine, results }, null, 2)}\n`);

// ── the Markdown report ──
const at = (value: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((node, step) => (node as Record<string | number, unknown> | undefined)?.[step], value);
const num = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;
const fmt = (value: number | null, unit = ''): string =>
  value === null ? 'not measured' : `${Math.round(value).toLocaleString('en-US')}${unit}`;
const pathRate = (result: Json | undefined, path: string): number | null =>
  num(
    at(
      (at(result, 'results') as Json[] | undefined)?.find((row) => row.path === path),
      'eventsPerSecond',
    ),
  );

const e2e = results.e2e;
const insecure = results.e2eInsecure;
const kcat =
  num(at(insecure, 'ceilings', 'kafkaRead', 'perSecond')) ??
  num(at(e2e, 'ceilings', 'kafkaRead', 'perSecond'));
const copyCeiling = num(at(e2e, 'ceilings', 'postgresCopy', 'perSecond'));
const share = (value: number | null, ceiling: number | null): string =>
  value === null || ceiling === null ? '' : `${Math.round((value / ceiling) * 100)} %`;

type Row = [
  figure: string,
  measured: string,
  goal: string,
  verdict: string,
  ofReadCeiling: string,
  ofCopyCeiling: string,
];
const rows: Row[] = [];
const goal = (met: boolean | null): string => (met === null ? '' : met ? 'met' : '**not met**');
const atLeast = (value: number | null, target: number): string =>
  goal(value === null ? null : value >= target);
const below = (value: number | null, target: number): string => goal(value === null ? null : value < target);

const ngdbRate = num(at(e2e, 'backlog', 'ngdb', 'eventsPerSecond'));
const copyRate = num(at(e2e, 'backlog', 'subscriber', 'eventsPerSecond'));
rows.push([
  'NGDB sink drain, events/s',
  fmt(ngdbRate),
  '≥ 40,000',
  atLeast(ngdbRate, 40_000),
  share(ngdbRate, kcat),
  share(ngdbRate, copyCeiling),
]);
rows.push([
  'copy path drain (coordinator + subscriber), events/s',
  fmt(copyRate),
  '≥ 30,000',
  atLeast(copyRate, 30_000),
  share(copyRate, kcat),
  share(copyRate, copyCeiling),
]);
for (const sink of ['ngdb', 'subscriber'] as const) {
  const p99 = num(at(e2e, 'steady', sink, 'p99Ms'));
  rows.push([
    `steady ${fmt(num(at(e2e, 'steady', 'rate')))}/s, ${sink === 'ngdb' ? 'NGDB' : 'copy'} p99, ms`,
    fmt(p99),
    '< 500',
    below(p99, 500),
    '',
    '',
  ]);
}
for (const process_ of (at(e2e, 'peakRssMb') as Json[] | undefined) ?? []) {
  const rss = num(process_.peakRssMb);
  rows.push([
    `peak RSS, ${String(process_.role)} (${fmt(num(at(e2e, 'events')))}-event backlog), MB`,
    fmt(rss),
    '< 256',
    below(rss, 256),
    '',
    '',
  ]);
}
/** The better of a mode's two publish runs, and both runs as text. */
const bestRate = (path: string, names: string[]): { best: number | null; runs: string } => {
  const rates = names.map((name) => pathRate(results[name], path)).filter((rate) => rate !== null);
  return {
    best: rates.length > 0 ? Math.max(...rates) : null,
    runs: rates.map((rate) => fmt(rate)).join(', '),
  };
};
for (const path of ['sdk', 'http', 'outbox']) {
  const on = bestRate(path, ['publish', 'publishAgain']);
  const off = bestRate(path, ['publishInsecure', 'publishInsecureAgain']);
  const change = on.best !== null && off.best !== null ? ((on.best - off.best) / off.best) * 100 : null;
  rows.push([
    `publish (${path}), events/s, security on (off), better of runs on ${on.runs} / off ${off.runs}`,
    `${fmt(on.best)} (${fmt(off.best)})`,
    'on ≥ 90 % of off',
    goal(change === null ? null : change >= -10),
    share(on.best, kcat),
    '',
  ]);
}
const drainChange = (key: 'ngdb' | 'subscriber'): string => {
  const on = num(at(e2e, 'backlog', key, 'eventsPerSecond'));
  const off = num(at(insecure, 'backlog', key, 'eventsPerSecond'));
  return on === null || off === null
    ? 'not measured'
    : `${fmt(off)} (on: ${((on / off - 1) * 100).toFixed(1)} %)`;
};
rows.push(['NGDB sink drain with security off, events/s', drainChange('ngdb'), '', '', '', '']);
rows.push(['copy path drain with security off, events/s', drainChange('subscriber'), '', '', '', '']);
const backfill = results.backfill;
const duringP99 = num(at(backfill, 'live', 'duringBackfill', 'p99Ms'));
rows.push([
  "live agreement's p99 before a new agreement's backfill, ms",
  fmt(num(at(backfill, 'live', 'beforeApproval', 'p99Ms'))),
  '',
  '',
  '',
  '',
]);
rows.push([
  "live agreement's p99 during the backfill, ms",
  fmt(duringP99),
  '< 500 (no stall)',
  below(duringP99, 500),
  '',
  '',
]);
const backfillRate = num(at(backfill, 'backfill', 'eventsPerSecond'));
rows.push([
  `backfill of ${fmt(num(at(backfill, 'history')))} events, events/s`,
  fmt(backfillRate),
  '',
  '',
  share(backfillRate, kcat),
  '',
]);
const query = results.query;
const queryP99 = num(at(query, 'p99Ms'));
rows.push([
  `query API single-key GET at ${fmt(num(at(query, 'targetPerSecond')))}/s: p50 / p99, ms`,
  `${num(at(query, 'p50Ms')) ?? 'not measured'} / ${queryP99 ?? 'not measured'}`,
  'p99 < 50',
  below(queryP99, 50),
  '',
  '',
]);
for (const row of (at(results.packages, 'results') as Json[] | undefined) ?? []) {
  const exportRate = num(row.exportPerSecond);
  const importRate = num(row.importPerSecond);
  rows.push([
    `package export (${String(row.package)}), rows/s`,
    fmt(exportRate),
    '≥ 50,000',
    atLeast(exportRate, 50_000),
    '',
    '',
  ]);
  rows.push([
    `package import (${String(row.package)}), rows/s`,
    fmt(importRate),
    '≥ 50,000',
    atLeast(importRate, 50_000),
    '',
    share(importRate, copyCeiling),
  ]);
}

const failed = Object.entries(results).filter(([, result]) => result.failed);
const unsettled = Object.entries(results)
  .filter(([, result]) => at(result, 'settled', 'quiet') === false)
  .map(([name]) => name);
const markdown = [
  '# lienthong benchmark report',
  '',
  `Produced by \`npm run bench\` on ${machine.date.slice(0, 10)} (${machine.minutes} min): ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, Kafka ${machine.kafka} (one local broker, TLS + SCRAM-SHA-512 + ACLs unless "security off"), PostgreSQL ${machine.postgres}. Load average at start ${machine.loadAverage.start.join(' ')}, at end ${machine.loadAverage.end.join(' ')}. Every figure is from this run; bench/report.json holds all of them.`,
  '',
  `Before each benchmark PostgreSQL checkpointed and the machine was let quiet down (under 10 % busy for 3 s in a row, at most 90 s): ${unsettled.length === 0 ? 'it did before every one' : `it did not before ${unsettled.join(', ')}`}.`,
  '',
  `Ceilings of this machine, same data, same run: raw read of the source topic with kcat ${fmt(kcat, ' events/s')}${at(insecure, 'ceilings', 'kafkaRead') ? " (measured with security off: Debian's kcat cannot SCRAM-authenticate to Kafka 4)" : ''}; raw COPY of the same rows into PostgreSQL (psql \\copy into a copy of the NGDB table, its indexes included) ${fmt(copyCeiling, ' rows/s')}.`,
  '',
  '| figure | measured | goal | | of kcat read | of COPY |',
  '|---|---|---|---|---|---|',
  ...rows.map((row) => `| ${row.join(' | ')} |`),
  '',
  ...(failed.length > 0
    ? [
        'Benchmarks that failed in this run:',
        '',
        ...failed.map(([name, result]) => `- ${name}: ${String(result.failed)}`),
        '',
      ]
    : []),
  'How each figure is made: docs/benchmarks.md.',
  '',
].join('\n');
writeFileSync('bench/report.md', markdown);
console.log(`\n${markdown}`);
console.log('written: bench/report.json, bench/report.md');
