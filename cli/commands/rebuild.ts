import { z } from 'zod';
import { rebuildNgdb, type NgdbRebuildResult } from '../../consumers/rebuild/index.ts';
import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { recordOperatorAction } from '../../platform/audit/operator-audit.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';
import { Progress } from '../progress.ts';

/** The flags of `lienthong rebuild`, as commander hands them over. */
export interface RebuildCommandOptions {
  sink: string;
  dataset?: string;
  agreement?: string;
  /** PostgreSQL schema of the live NGDB. */
  schema: string;
  /** PostgreSQL schema of the agreements and the operator audit trail. */
  platformSchema: string;
}

/** Which copy to rebuild, parsed from the flags once. */
export type RebuildTarget =
  | { sink: 'ngdb'; dataset: string | null }
  | { sink: 'agency'; agency: string; agreement: string | null; dataset: string | null };

const SinkFlag = z.union([
  z.literal('ngdb'),
  z.string().regex(/^agency:[A-Z][A-Z0-9-]*$/, 'expected ngdb or agency:<CODE> (an agency code in capitals)'),
]);

/** `--sink`, `--dataset`, `--agreement` as one target; LT_CONFIG_INVALID naming the flag and the rule broken. */
export function parseRebuildTarget(
  options: Pick<RebuildCommandOptions, 'sink' | 'dataset' | 'agreement'>,
): RebuildTarget {
  const sink = SinkFlag.safeParse(options.sink);
  if (!sink.success)
    throw new LtError('LT_CONFIG_INVALID', `--sink "${options.sink}": ${sink.error.issues[0]?.message}`, {
      hint: 'lienthong rebuild --sink ngdb, or --sink agency:UBND-HN (the subscribing agency of a share)',
    });
  if (options.dataset !== undefined && options.agreement !== undefined)
    throw new LtError(
      'LT_CONFIG_INVALID',
      '--dataset and --agreement name the copy twice: give one of them',
      {
        hint: 'an agreement already names its dataset',
      },
    );
  if (sink.data === 'ngdb') {
    if (options.agreement !== undefined)
      throw new LtError(
        'LT_CONFIG_INVALID',
        '--agreement does not apply to --sink ngdb: the NGDB reads the source topics',
        {
          hint: 'narrow an NGDB rebuild with --dataset <id>, or rebuild the subscriber’s copy with --sink agency:<CODE>',
        },
      );
    return { sink: 'ngdb', dataset: options.dataset ?? null };
  }
  return {
    sink: 'agency',
    agency: sink.data.slice('agency:'.length),
    agreement: options.agreement ?? null,
    dataset: options.dataset ?? null,
  };
}

/** The datasets an NGDB rebuild covers: all of the dictionary, or the one `--dataset` names. */
export function ngdbDatasets(dictionary: Dictionary, dataset: string | null): Dataset[] {
  return dataset === null ? [...dictionary.datasets.values()] : [getDataset(dictionary, dataset)];
}

function required(): { brokers: string[]; registryUrl: string } {
  const env = readEnv();
  if (!env.KAFKA_BROKERS || !env.SCHEMA_REGISTRY_URL) {
    throw new LtError('LT_CONFIG_INVALID', 'lienthong rebuild needs KAFKA_BROKERS and SCHEMA_REGISTRY_URL', {
      hint: 'export the broker and registry the live sink uses (the same as for lienthong ngdb)',
    });
  }
  return { brokers: env.KAFKA_BROKERS, registryUrl: env.SCHEMA_REGISTRY_URL };
}

/**
 * An agency's copy: checks the target names a real sink (a known agency, an agreement it subscribes to),
 * then says that this rebuild is not built yet. Nothing is changed either way.
 */
async function refuseAgencyRebuild(
  target: Extract<RebuildTarget, { sink: 'agency' }>,
  dictionary: Dictionary,
  platform: Pool,
): Promise<never> {
  if (!dictionary.agencies.has(target.agency))
    throw new LtError(
      'LT_SINK_UNKNOWN',
      `no agency "${target.agency}" in the dictionary, so no sink of it to rebuild`,
      {
        hint: `known agencies: ${[...dictionary.agencies.keys()].join(', ')}`,
      },
    );
  const store = new AgreementStore(platform, dictionary);
  const mine = await store.list({ subscriber: target.agency });
  if (target.agreement !== null) {
    const agreement = await store.get(target.agreement);
    if (agreement.subscriber !== target.agency)
      throw new LtError(
        'LT_SINK_UNKNOWN',
        `agreement ${agreement.id} is subscribed by ${agreement.subscriber}, not ${target.agency}: ${target.agency} has no sink of it`,
        { hint: `rebuild it with --sink agency:${agreement.subscriber}` },
      );
  }
  if (target.dataset !== null) {
    getDataset(dictionary, target.dataset);
    if (!mine.some((agreement) => agreement.dataset === target.dataset))
      throw new LtError(
        'LT_SINK_UNKNOWN',
        `${target.agency} has no agreement on dataset ${target.dataset}, so no sink of it to rebuild`,
        {
          hint: `its agreements: ${mine.map((a) => `${a.id} (${a.dataset})`).join(', ') || 'none'}`,
        },
      );
  }
  throw new LtError(
    'LT_CONFIG_INVALID',
    'rebuilding an agency’s copy (--sink agency:<CODE>) is not built yet',
    {
      hint: 'nothing was changed; docs/rebuild.md (Known limits) says what exists today: lienthong rebuild --sink ngdb',
    },
  );
}

function printResult(result: NgdbRebuildResult): void {
  for (const table of result.tables)
    console.log(
      `  ${table.table}: ${table.liveRows} rows, checksum ${table.liveChecksum}` +
        (table.inFlightKeys > 0
          ? ` (${table.inFlightKeys} keys in flight, applied again by the live sink)`
          : ''),
    );
  console.log(
    `rebuilt ${result.tables.length} table(s) from ${result.records} records; compared equal and swapped in.\n` +
      `The replaced tables are kept in schema ${result.schemas.previous} until the next rebuild.`,
  );
}

/** `lienthong rebuild`: builds a fresh copy beside the live one, compares, swaps (docs/rebuild.md). */
export async function runRebuild(options: RebuildCommandOptions): Promise<void> {
  const target = parseRebuildTarget(options);
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL ?? 'warn');
  const dictionary = loadDictionary();
  const datasets = target.sink === 'ngdb' ? ngdbDatasets(dictionary, target.dataset) : [];
  const platform = await createPool({ url: env.DATABASE_URL, schema: options.platformSchema, max: 2 });
  try {
    await migrate(platform, 'platform');
    if (target.sink === 'agency') return await refuseAgencyRebuild(target, dictionary, platform);
    const { brokers, registryUrl } = required();
    // the principal that may read every lt.src.* and use the lt.ngdb* groups (docs/security.md)
    const principal = env.KAFKA_PRINCIPAL ?? principals.ngdb;
    const sinkName = target.dataset ? `ngdb:${target.dataset}` : 'ngdb';
    const progress = new Progress({ title: `rebuild ${sinkName}`, unit: 'records' });
    await recordOperatorAction(platform, {
      principal,
      action: 'rebuild',
      target: sinkName,
      outcome: 'planned',
      detail: { schema: options.schema, datasets: datasets.map((d) => d.id) },
    });
    try {
      const result = await rebuildNgdb({
        kafka: createKafka({
          brokers,
          clientId: 'lienthong-rebuild',
          log,
          security: kafkaSecurityFor(env, principals.ngdb, log),
        }),
        registry: createRegistryClient({ url: registryUrl, ...httpIdentityFor(env, principals.ngdb, log) }),
        databaseUrl: env.DATABASE_URL,
        liveSchema: options.schema,
        datasets,
        dictionary,
        log,
        onProgress: (update) => progress.update(update),
      });
      progress.finish();
      await recordOperatorAction(platform, {
        principal,
        action: 'rebuild',
        target: sinkName,
        outcome: 'done',
        detail: { schemas: result.schemas, records: result.records, tables: result.tables },
      });
      printResult(result);
    } catch (error) {
      progress.finish();
      await recordOperatorAction(platform, {
        principal,
        action: 'rebuild',
        target: sinkName,
        outcome: error instanceof LtError && error.code === 'LT_SINK_UNKNOWN' ? 'refused' : 'failed',
        detail:
          error instanceof LtError ? { code: error.code, message: error.message, ...error.details } : {},
      });
      throw error;
    }
  } finally {
    await platform.end();
  }
}
