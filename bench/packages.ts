// The data-package benchmark (issue 12, method (d)). Not a test: it prints figures.
//   npm run bench:packages                   # 200,000 citizens
//   BENCH_ROWS=50000 node bench/packages.ts
// Needs PostgreSQL only (DATABASE_URL). Seeds an NGDB schema with one CREATE per citizen, then times an export
// of its current state to a package file and an import of that file into an empty NGDB schema (verification
// included: the import reads the package twice, once to verify, once to load), plain and encrypted for an agency.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensurePlatformSigningKey,
  exportPackage,
  importPackage,
  issueAgencyKey,
  readRecipientPrivateKey,
  readRecipientPublicKey,
  verifyPackage,
} from '../consumers/packages/index.ts';
import { readEnv } from '../infra/config/options.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { createPool, quoteIdent, type Pool } from '../infra/postgres/pool.ts';
import { sampleCitizens } from '../producers/sample/citizens.ts';
import { getDataset, loadDictionary } from '../schemas/model/dictionary.ts';
import { citizenEvent, createNgdbTables, tableChecksum, writeNgdbEvents } from '../test/helpers/ngdb-seed.ts';

const rows = Number(process.env.BENCH_ROWS ?? 200_000);
const env = readEnv();
const log = createLogger('error');
const dictionary = loadDictionary();
const dataset = getDataset(dictionary, 'population.citizen');
const home = mkdtempSync(join(tmpdir(), 'lt-bench-packages-home-'));
const dir = mkdtempSync(join(tmpdir(), 'lt-bench-packages-'));

async function freshSchema(name: string): Promise<Pool> {
  const pool = await createPool({ url: env.DATABASE_URL, schema: name });
  await pool.query(`DROP SCHEMA ${quoteIdent(name)} CASCADE; CREATE SCHEMA ${quoteIdent(name)}`);
  return pool;
}

console.log(
  `packages benchmark: ${rows} population.citizen rows; PostgreSQL ${env.DATABASE_URL.replace(/\/\/.*@/, '//')}`,
);
const source = await freshSchema('lt_bench_packages_src');
const history = await createNgdbTables(source, dataset);
const seeding = Date.now();
const at = new Date('2026-06-30T17:00:00Z');
await writeNgdbEvents(
  source,
  history,
  sampleCitizens(rows, 2025).map((citizen) =>
    citizenEvent(dataset, String(citizen.personal_id), 1, at, citizen),
  ),
);
console.log(`seeded the source NGDB in ${((Date.now() - seeding) / 1000).toFixed(1)} s`);
const sourceSum = await tableChecksum(source, history.current.name, history.keyColumn);
const signingKey = ensurePlatformSigningKey(home);
const agency = issueAgencyKey(home, 'UBND-HN');

/** CPU seconds (user + system) this process spent since `since`: PostgreSQL's share is not in it. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

// Warm-up, not reported: one export and import of the whole source, so the first measured mode does not pay for
// the process's cold start (JIT, first connections) alone.
{
  const out = join(dir, 'warm-up.ltpkg');
  await exportPackage({ ngdb: source, dataset, out, signingKey, createdBy: 'lt-operator' });
  const target = await freshSchema('lt_bench_packages_dst');
  const verified = await verifyPackage({
    file: out,
    dictionary,
    verifyKey: signingKey.publicKey,
    target: { kind: 'ngdb' },
  });
  await importPackage({ verified, target: { kind: 'ngdb' }, pool: target, log });
  await target.end();
  rmSync(out);
}

const results: string[][] = [];
/** The same figures for bench/report.ts (the JSON object on the last line). */
const figures: Record<string, unknown>[] = [];
for (const mode of ['plain', 'encrypted'] as const) {
  for (const codec of ['deflate', 'null'] as const) {
    const out = join(dir, `${mode}-${codec}.ltpkg`);
    const exportStarted = Date.now();
    const exportCpu = process.cpuUsage();
    await exportPackage({
      ngdb: source,
      dataset,
      out,
      signingKey,
      createdBy: 'lt-operator',
      codec,
      ...(mode === 'encrypted'
        ? {
            recipient: {
              agency: 'UBND-HN',
              publicKey: readRecipientPublicKey(agency.publicKeyFile).publicKey,
            },
          }
        : {}),
    });
    const exportSeconds = (Date.now() - exportStarted) / 1000;
    const exportCpuSeconds = cpuSeconds(exportCpu);

    const target = await freshSchema('lt_bench_packages_dst');
    const into =
      mode === 'encrypted' ? ({ kind: 'agency', agency: 'UBND-HN' } as const) : ({ kind: 'ngdb' } as const);
    const importStarted = Date.now();
    const importCpu = process.cpuUsage();
    const verified = await verifyPackage({
      file: out,
      dictionary,
      verifyKey: signingKey.publicKey,
      target: into,
      recipientKey: () => readRecipientPrivateKey(agency.privateKeyFile),
    });
    const verifySeconds = (Date.now() - importStarted) / 1000;
    await importPackage({ verified, target: into, pool: target, log });
    const importSeconds = (Date.now() - importStarted) / 1000;
    const importCpuSeconds = cpuSeconds(importCpu);
    // both targets name the table after the dataset (the agency's copy holds every field here)
    const equal = (await tableChecksum(target, history.current.name, history.keyColumn)) === sourceSum;
    await target.end();
    results.push([
      `${mode}, ${codec}`,
      `${(statSync(out).size / 1e6).toFixed(1)} MB`,
      `${Math.round(rows / exportSeconds)}`,
      `${Math.round(rows / importSeconds)}`,
      `${exportCpuSeconds.toFixed(1)} s / ${importCpuSeconds.toFixed(1)} s`,
      `${verifySeconds.toFixed(1)} s`,
      into.kind === 'ngdb' ? 'ngdb (+history)' : 'agency copy',
      equal ? 'equal' : 'DIFFERENT',
    ]);
    figures.push({
      package: `${mode}, ${codec}`,
      bytes: statSync(out).size,
      exportPerSecond: Math.round(rows / exportSeconds),
      importPerSecond: Math.round(rows / importSeconds),
      exportCpuSeconds: Number(exportCpuSeconds.toFixed(2)),
      importCpuSeconds: Number(importCpuSeconds.toFixed(2)),
      verifySeconds: Number(verifySeconds.toFixed(2)),
      into: into.kind,
      checksumEqual: equal,
    });
    rmSync(out);
  }
}

const header = [
  'package',
  'size',
  'export rows/s',
  'import rows/s',
  'Node CPU export / import',
  'of the import: verify',
  'into',
  'checksum',
];
const widths = header.map((title, column) =>
  Math.max(title.length, ...results.map((row) => row[column]!.length)),
);
const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ');
console.log(`\n${line(header)}\n${widths.map((width) => '─'.repeat(width)).join('  ')}`);
for (const row of results) console.log(line(row));
const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
console.log(`\npeak RSS ${peakRssMb} MB`);

await source.query('DROP SCHEMA lt_bench_packages_src CASCADE');
await source.query('DROP SCHEMA IF EXISTS lt_bench_packages_dst CASCADE');
await source.end();
rmSync(home, { recursive: true, force: true });
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ rows, results: figures, peakRssMb }));
