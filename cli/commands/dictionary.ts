import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { listen } from '../../infra/http/server.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { caFile, httpIdentityFor, kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { Catalog, type CatalogDataset } from '../../platform/catalog/catalog.ts';
import { registerCatalogRoutes } from '../../platform/catalog/routes.ts';
import { diffDictionaries } from '../../schemas/model/diff.ts';
import { DICTIONARY_DIR, loadDictionary, readDictionary } from '../../schemas/model/dictionary.ts';
import { generateTypeScript } from '../../schemas/model/typescript.ts';
import { createRegistryClient, registerDatasetSchemas } from '../../schemas/registry/client.ts';
import { createRegistryServer, secureRegistryOptions } from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';
import {
  countHttpRequests,
  kafkaCheck,
  PipelineMetrics,
  postgresCheck,
} from '../../infra/observability/index.ts';
import { serveOps } from '../ops.ts';
import { printTable } from '../table.ts';

/**
 * `lienthong dictionary lint [--json]`: every rule, every file; LT_DICTIONARY_INVALID (exit 3) when anything is
 * wrong. `--json` prints `{ datasets, codeLists, agencies, problems: [{ file, line, rule, message }] }`.
 */
export function lint(dir: string, json: boolean): void {
  const { dictionary, problems } = readDictionary(resolve(dir));
  const counts = {
    datasets: dictionary.datasets.size,
    codeLists: dictionary.codeLists.size,
    agencies: dictionary.agencies.size,
  };
  const summary = `${counts.datasets} datasets, ${counts.codeLists} code lists, ${counts.agencies} agencies`;
  if (json) console.log(JSON.stringify({ ...counts, problems }, null, 2));
  else {
    for (const problem of problems)
      console.log(`${problem.file}:${problem.line}: ${problem.message} [${problem.rule}]`);
    if (problems.length === 0) console.log(`${summary}: no problems`);
  }
  if (problems.length > 0)
    throw new LtError('LT_DICTIONARY_INVALID', `${problems.length} problem(s) in ${summary}`, {
      hint: 'fix each file:line listed above and lint again',
    });
}

/** A dictionary folder, or `git:<rev>` for the dictionary as committed at that revision. */
function dictionaryAt(where: string): string {
  if (!where.startsWith('git:')) return resolve(where);
  const rev = where.slice(4);
  const dir = mkdtempSync(join(tmpdir(), 'lt-dictionary-'));
  try {
    const archive = execFileSync('git', ['archive', '--format=tar', rev, 'schemas/dictionary'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
  } catch (cause) {
    throw new LtError('LT_DICTIONARY_INVALID', `cannot read the dictionary at git revision "${rev}"`, {
      cause,
      hint: 'run inside the repository and name a revision that has schemas/dictionary (e.g. git:HEAD~1)',
    });
  }
  return join(dir, 'schemas', 'dictionary');
}

/**
 * `lienthong dictionary diff <old> <new> [--json]`: which change breaks which readers; LT_SCHEMA_INCOMPATIBLE
 * (exit 5) if the registry would refuse one. `--json` prints the comparison (`{ added, removed, changed }`).
 */
export function diff(oldWhere: string, newWhere: string, json: boolean): void {
  const result = diffDictionaries(
    loadDictionary(dictionaryAt(oldWhere)),
    loadDictionary(dictionaryAt(newWhere)),
  );
  const refused = result.changed.filter((change) => change.refused).map((change) => change.dataset);
  const refuse = (): void => {
    if (refused.length > 0)
      throw new LtError(
        'LT_SCHEMA_INCOMPATIBLE',
        `the registry would refuse the change of ${refused.join(', ')} under its compatibility level`,
        { hint: 'make the change compatible (docs/dictionary.md), or publish it as a new dataset' },
      );
  };
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    refuse();
    return;
  }
  for (const id of result.added)
    console.log(`+ ${id}: new dataset (its first schema version; nothing to break)`);
  for (const id of result.removed) {
    console.log(
      `- ${id}: dataset removed — its topic stays the change history; subscribers must be told before its agreements end`,
    );
  }
  for (const change of result.changed) {
    console.log(`\n~ ${change.dataset} (compatibility ${change.level})`);
    for (const line of change.changes) console.log(`    ${line}`);
    if (change.newReadersBreak.length > 0) {
      console.log(
        '  readers on the NEW schema cannot read events already written (breaks BACKWARD; replays and rebuilds fail):',
      );
      for (const line of change.newReadersBreak) console.log(`    - ${line}`);
    }
    if (change.oldReadersBreak.length > 0) {
      console.log(
        '  readers still on the OLD schema cannot read new events (breaks FORWARD; subscribers must upgrade first):',
      );
      for (const line of change.oldReadersBreak) console.log(`    - ${line}`);
    }
    if (change.newReadersBreak.length === 0 && change.oldReadersBreak.length === 0)
      console.log('  every reader, old and new, keeps working');
    console.log(
      change.refused
        ? `  ✗ the registry refuses this under ${change.level}`
        : `  ✓ allowed under ${change.level}`,
    );
  }
  if (result.added.length + result.removed.length + result.changed.length === 0)
    console.log('no schema changes');
  refuse();
}

/** `lienthong dictionary publish`: registers every dataset's key and value subject; idempotent. */
export async function publish(registryUrl: string | undefined): Promise<void> {
  const url = registryUrl ?? readEnv().SCHEMA_REGISTRY_URL;
  if (!url) {
    throw new LtError('LT_CONFIG_INVALID', 'no schema registry to publish to', {
      hint: 'pass --registry http://host:port or set SCHEMA_REGISTRY_URL (start one with `npm run lienthong -- dictionary serve`)',
    });
  }
  const dictionary = loadDictionary();
  const env = readEnv();
  // the dictionary publisher's own principal: the only one that may register every dataset's subjects
  const registry = createRegistryClient({
    url,
    ...httpIdentityFor(env, principals.registry, createLogger('warn')),
  });
  const rows: string[][] = [];
  for (const dataset of [...dictionary.datasets.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const registered = await registerDatasetSchemas(registry, dataset);
    rows.push([
      dataset.id,
      registered.topic,
      String(registered.keySchemaId),
      String(registered.valueSchemaId),
    ]);
  }
  printTable(['dataset', 'topic', 'key schema id', 'value schema id'], rows);
}

/** `lienthong dictionary generate`: rewrites schemas/generated/datasets.ts from the dictionary. */
export function generate(): void {
  const file = resolve(DICTIONARY_DIR, '..', 'generated', 'datasets.ts');
  writeFileSync(file, generateTypeScript(loadDictionary()));
  console.log(`wrote ${file}`);
}

function printDataset(dataset: CatalogDataset): void {
  console.log(`\n${dataset.id} — ${dataset.description.en}\n  ${dataset.description.vi}`);
  console.log(
    `  owner ${dataset.owner} · ${dataset.kind} · key ${dataset.key} · ${dataset.compatibility} · topic ${dataset.topic}`,
  );
  printTable(
    ['field', 'type', 'required', 'classification', 'description'],
    dataset.fields.map((field) => [
      field.name,
      field.type,
      field.required ? 'yes' : 'no',
      field.classification,
      field.description.en,
    ]),
  );
  if (dataset.connections.length > 0) {
    printTable(
      ['agency', 'role', 'via', 'since', 'records'],
      dataset.connections.map((c) => [c.agency, c.role, c.via, c.since ?? '—', String(c.records)]),
    );
  }
  if (dataset.agreements && dataset.agreements.length > 0) {
    printTable(
      ['agreement', 'subscriber', 'status', 'stream'],
      dataset.agreements.map((a) => [
        a.id,
        a.subscriber,
        a.status,
        a.degraded ? `DEGRADED: ${a.degraded.code}: ${a.degraded.reason}` : '—',
      ]),
    );
  }
}

/** `lienthong dictionary show [dataset]`: the catalog, with live connection results when KAFKA_BROKERS is set. */
export async function show(datasetId: string | undefined, json: boolean): Promise<void> {
  const env = readEnv();
  const dictionary = loadDictionary();
  const log = createLogger('error');
  const kafka = env.KAFKA_BROKERS
    ? createKafka({
        brokers: env.KAFKA_BROKERS,
        clientId: 'lienthong-catalog',
        log,
        security: kafkaSecurityFor(env, principals.operator, log), // it counts records: describe only
      })
    : undefined;
  const catalog = new Catalog({ dictionary, ...(kafka ? { kafka } : {}) });
  const datasets = (await catalog.datasets()).filter((dataset) => !datasetId || dataset.id === datasetId);
  if (datasetId && datasets.length === 0) {
    throw new LtError('LT_DATASET_UNKNOWN', `unknown dataset "${datasetId}"`, {
      hint: `known: ${[...dictionary.datasets.keys()].join(', ')}`,
    });
  }
  if (json) console.log(JSON.stringify(datasets, null, 2));
  else {
    datasets.forEach(printDataset);
    if (!kafka) console.log('\n(set KAFKA_BROKERS to include live connection results)');
  }
}

export interface ServeOptions {
  port: number;
  host: string;
  schema: string;
  /** PostgreSQL schema of the agreements, for the catalog's agreements and their degraded state. */
  platformSchema: string;
  opsPort?: number;
  opsHost?: string;
}

/** `lienthong dictionary serve`: the registry (Confluent REST API) and the catalog API on one port. */
export async function serve(options: ServeOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const dictionary = loadDictionary();
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema });
  await migrate(pool, 'registry');
  // TLS, every request authenticated as a principal, writes per subject (schemas/registry/access.ts), unless insecure
  const app = createRegistryServer(
    new RegistryStore(pool),
    log,
    env.LIENTHONG_INSECURE ? {} : secureRegistryOptions(env.LIENTHONG_HOME, options.host),
  );
  if (env.LIENTHONG_INSECURE)
    log.warn('INSECURE: the registry and catalog answer anyone in plaintext (LIENTHONG_INSECURE=1)');
  const metrics = new PipelineMetrics();
  countHttpRequests(app, metrics, 'registry');
  const kafka = env.KAFKA_BROKERS
    ? createKafka({
        brokers: env.KAFKA_BROKERS,
        clientId: 'lienthong-catalog',
        log,
        security: kafkaSecurityFor(env, principals.operator, log), // it counts records: describe only
      })
    : undefined;
  const platformPool = await createPool({ url: env.DATABASE_URL, schema: options.platformSchema, max: 2 });
  await migrate(platformPool, 'platform');
  registerCatalogRoutes(
    app,
    new Catalog({
      dictionary,
      registryPool: pool,
      agreements: new AgreementStore(platformPool, dictionary),
      ...(kafka ? { kafka } : {}),
    }),
    dictionary,
  );
  const url = await listen(app, options.port, options.host);
  // the registry's own ops port: its PostgreSQL (both schemas) and, when the catalog counts records, Kafka
  const ops = await serveOps(
    'registry',
    {
      metrics,
      checks: [
        postgresCheck(pool),
        postgresCheck(platformPool, 'postgres-platform'),
        ...(kafka ? [kafkaCheck(kafka)] : []),
      ],
      log,
    },
    options,
  );
  // said once everything listens, the ops port included: a caller may use it from this line on
  console.log(
    `Shared Data Dictionary at ${url}: schema registry (Confluent REST API) and catalog (${url}/v1/catalog/datasets)` +
      (env.LIENTHONG_INSECURE
        ? ' — INSECURE: plaintext, no authentication.'
        : ` — TLS (trust ${caFile(env.LIENTHONG_HOME)}), HTTP Basic as a principal.`) +
      ' Ctrl-C stops it.',
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await ops?.close();
  await app.close();
  await pool.end();
  await platformPool.end();
}
