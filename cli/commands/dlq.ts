import { Command } from 'commander';
import { readEnv, type Env } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { topicKind } from '../../infra/kafka/topics.ts';
import { createLogger, type Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { reshareAgreement } from '../../platform/coordinator/index.ts';
import {
  DEAD_LETTER_STAGES,
  discardDeadLetters,
  listDeadLetters,
  parseDeadLetterAddress,
  parseDeadLetterFilter,
  redriveDeadLetters,
  showDeadLetter,
  type DeadLetterDetail,
  type DeadLetterFilterInput,
  type DeadLetterSources,
  type DeadLetterView,
} from '../../platform/dead-letters/index.ts';
import { loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient, type SchemaRegistry } from '../../schemas/registry/client.ts';
import { printTable } from '../table.ts';

interface CommonOptions extends DeadLetterFilterInput {
  schema: string;
  json: boolean;
}

/** The principal an operator's command acts as: KAFKA_PRINCIPAL, else lt-operator (what is audited). */
function principalOf(env: Env): string {
  return env.KAFKA_PRINCIPAL ?? principals.operator;
}

/** The broker, the platform schema, the dictionary and the agreements, for the time of `work`. */
async function withSources<T>(
  options: { schema: string },
  work: (
    sources: DeadLetterSources,
    context: { env: Env; log: Logger; pool: Pool; dictionary: Dictionary; store: AgreementStore },
  ) => Promise<T>,
): Promise<T> {
  const env = readEnv();
  if (!env.KAFKA_BROKERS)
    throw new LtError(
      'LT_CONFIG_INVALID',
      'dead-letter commands need KAFKA_BROKERS (the cluster keeping them)',
      {
        hint: 'export KAFKA_BROKERS=host:port of the platform’s cluster',
      },
    );
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const dictionary = loadDictionary();
  const kafka = createKafka({
    brokers: env.KAFKA_BROKERS,
    clientId: 'lienthong-dlq',
    log,
    security: kafkaSecurityFor(env, principals.operator, log),
  });
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
  try {
    await migrate(pool, 'platform');
    const store = new AgreementStore(pool, dictionary);
    const agreements = await store.list();
    return await work({ kafka, pool, dictionary, agreements }, { env, log, pool, dictionary, store });
  } finally {
    await pool.end();
  }
}

function registryOf(env: Env, log: Logger): SchemaRegistry {
  if (!env.SCHEMA_REGISTRY_URL)
    throw new LtError('LT_CONFIG_INVALID', 'this command decodes records: it needs SCHEMA_REGISTRY_URL', {
      hint: 'export SCHEMA_REGISTRY_URL=https://… of the platform’s registry (`lienthong dictionary serve`)',
    });
  return createRegistryClient({
    url: env.SCHEMA_REGISTRY_URL,
    ...httpIdentityFor(env, principals.operator, log),
  });
}

/** Filter and addresses checked before anything connects: a wrong value changes nothing. */
function selectionOf(options: DeadLetterFilterInput, addresses: string[], dictionary: Dictionary) {
  return {
    filter: parseDeadLetterFilter(
      {
        stage: options.stage,
        agency: options.agency,
        code: options.code,
        dataset: options.dataset,
        since: options.since,
        until: options.until,
      },
      dictionary,
    ),
    addresses: addresses.map(parseDeadLetterAddress),
  };
}

async function runList(options: CommonOptions & { all: boolean }): Promise<void> {
  const selection = selectionOf(options, [], loadDictionary());
  const views = await withSources(options, (sources) =>
    listDeadLetters(sources, { ...selection, includeResolved: options.all }),
  );
  if (options.json) {
    console.log(JSON.stringify(views, null, 2));
    return;
  }
  if (views.length === 0) {
    console.log(options.all ? 'no dead letters match' : 'no open dead letters match');
    return;
  }
  printTable(
    ['address', 'at', 'stage', 'code', 'dataset', 'key', 'status', 'detail'],
    views.map((view) => [
      view.address,
      view.deadLetteredAt.slice(0, 19).replace('T', ' '),
      view.agency ? `${view.stage}.${view.agency}` : view.stage,
      view.code,
      view.dataset ?? '-',
      view.key ?? '-',
      view.status,
      view.detail.length > 70 ? `${view.detail.slice(0, 69)}…` : view.detail,
    ]),
  );
  console.log(`\n${views.length} dead letter(s); \`lienthong dlq show <address>\` shows one in full`);
}

async function runShow(address: string, options: { schema: string; json: boolean }): Promise<void> {
  const at = parseDeadLetterAddress(address);
  const detail = await withSources(options, (sources, { env, log }) =>
    showDeadLetter(sources, registryOf(env, log), at),
  );
  if (options.json) {
    console.log(JSON.stringify(detail, null, 2));
    return;
  }
  const view = detail.deadLetter;
  const lines: [string, string][] = [
    ['address', view.address],
    [
      'status',
      view.resolution
        ? `${view.status} by ${view.resolution.principal} at ${view.resolution.resolvedAt}: ${view.resolution.reason}`
        : 'open',
    ],
    ['dead-lettered', view.deadLetteredAt],
    ['stage', view.agency ? `${view.stage} (${view.agency})` : view.stage],
    ['reason', `${view.code}: ${view.detail}`],
    ['agreement', view.agreement ?? '-'],
    [
      'source',
      view.source === null
        ? '-'
        : 'topic' in view.source
          ? `${view.source.topic}:${view.source.partition}:${view.source.offset}`
          : `${view.source.table} row ${view.source.id}`,
    ],
    ['dataset', view.dataset ?? '-'],
    ['redriven from', view.redrivenFrom ?? '-'],
  ];
  for (const [name, value] of lines) console.log(`${name.padEnd(14)} ${value}`);
  console.log('\nheaders');
  for (const [name, value] of Object.entries(detail.headers))
    console.log(`  ${name}: ${value.slice(0, 300)}`);
  console.log('\nkey');
  console.log(
    detail.key === null
      ? '  (none)'
      : 'text' in detail.key
        ? `  ${detail.key.text}`
        : `  hex ${detail.key.preview.hex}`,
  );
  console.log('\nvalue');
  if (detail.value === null) console.log('  (none: a tombstone)');
  else if ('decoded' in detail.value)
    console.log(
      `  Avro, schema id ${detail.value.schemaId}:\n${JSON.stringify(detail.value.decoded, null, 2).replace(/^/gm, '  ')}`,
    );
  else {
    const { preview } = detail.value;
    console.log(`  not decoded (${detail.value.notDecoded})`);
    console.log(`  ${preview.bytes} bytes${preview.truncated ? ', first 256 shown' : ''}`);
    console.log(`  hex  ${preview.hex}`);
    console.log(`  text ${preview.text}`);
  }
}

async function runRedrive(addresses: string[], options: CommonOptions & { dryRun: boolean }): Promise<void> {
  const selection = selectionOf(options, addresses, loadDictionary());
  const report = await withSources(options, (sources, { env, log, store }) => {
    const principal = principalOf(env);
    return redriveDeadLetters(sources, {
      ...selection,
      registry: registryOf(env, log),
      principal,
      resync: async (id, reason) => void (await store.resync(id, reason, principal)),
      log,
      dryRun: options.dryRun,
    });
  });
  if (options.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    if (report.redriven.length > 0) {
      console.log(report.dryRun ? 'would redrive:' : 'redriven:');
      printTable(
        ['address', 'to'],
        report.redriven.map((one) => [one.address, one.to]),
      );
    }
    for (const [title, list] of [
      ['still failing (left open; fix the cause first):', report.stillFailing],
      ['not redriven by the platform:', report.notRedrivable],
    ] as const)
      if (list.length > 0) {
        console.log(`\n${title}`);
        printTable(
          ['address', 'code', 'reason'],
          list.map((one) => [one.address, one.code, one.reason]),
        );
      }
    console.log(
      `\n${report.redriven.length} redriven${report.dryRun ? ' (dry run: nothing changed)' : ''}, ` +
        `${report.stillFailing.length} still failing, ${report.notRedrivable.length} not redrivable` +
        (report.auditSeq === null ? '' : `; audit entry ${report.auditSeq}`),
    );
    if (!report.dryRun && report.redriven.length > 0)
      console.log(
        'a record its stage refuses again comes back as a new dead letter: see `lienthong dlq list`',
      );
  }
  if (report.stillFailing.length + report.notRedrivable.length > 0) process.exitCode = 4;
}

async function runDiscard(addresses: string[], options: CommonOptions & { reason?: string }): Promise<void> {
  if (options.reason === undefined || options.reason.trim().length < 3)
    throw new LtError('LT_ARGUMENT_INVALID', 'a discard states its reason', {
      hint: 'add --reason "<why these records may be dropped>" (it is kept in the audit trail); nothing was changed',
    });
  const selection = selectionOf(options, addresses, loadDictionary());
  const reason = options.reason;
  const report = await withSources(options, (sources, { env }) =>
    discardDeadLetters(sources, { ...selection, reason, principal: principalOf(env) }),
  );
  if (options.json) console.log(JSON.stringify(report, null, 2));
  else console.log(`${report.discarded.length} dead letter(s) discarded; audit entry ${report.auditSeq}`);
}

const filterHelp =
  '\nFilters (all optional, each narrows):\n' +
  `  --stage <stage>     ${DEAD_LETTER_STAGES.join(' | ')}\n` +
  '  --agency <code>     an agency of the dictionary (its own ingest and sink dead letters)\n' +
  '  --code <code>       an error code, e.g. LT_SCHEMA_UNKNOWN\n' +
  '  --dataset <id>      a dataset of the dictionary, e.g. population.citizen\n' +
  '  --since/--until <t> an ISO time, or a duration back from now: 30m, 6h, 7d\n';

function withFilters(command: Command): Command {
  return command
    .option('--stage <stage>', 'only this stage')
    .option('--agency <code>', 'only this agency’s dead letters')
    .option('--code <code>', 'only this error code')
    .option('--dataset <id>', 'only records of this dataset')
    .option('--since <time>', 'dead-lettered at or after (ISO time or 30m / 6h / 7d ago)')
    .option('--until <time>', 'dead-lettered before')
    .option(
      '--schema <name>',
      'PostgreSQL schema of the platform (agreements, resolutions, audit)',
      'lt_platform',
    )
    .option('--json', 'machine-readable output', false);
}

/** `lienthong dlq list|show|redrive|discard`. */
export function dlqCommand(): Command {
  const dlq = new Command('dlq').description(
    'dead letters: records a stage refused (lt.dlq.<stage>[.<agency>]), with their reasons — list, inspect,\n' +
      'redrive after fixing the cause, or discard with a reason (docs/dead-letters.md)',
  );
  withFilters(
    dlq.command('list').description('the open dead letters (redriven and discarded ones with --all)'),
  )
    .option('--all', 'also those already redriven or discarded', false)
    .addHelpText(
      'after',
      filterHelp +
        '\nRuns as lt-operator (KAFKA_PRINCIPAL overrides) against KAFKA_BROKERS.\nExamples:\n' +
        '  lienthong dlq list\n  lienthong dlq list --stage ngdb --code LT_SCHEMA_UNKNOWN --since 6h\n' +
        '  lienthong dlq list --agency BHXH --json',
    )
    .action((options: CommonOptions & { all: boolean }) => runList(options));
  dlq
    .command('show')
    .description(
      'one dead letter in full: its reason, headers, and its record decoded (Avro) or previewed (hex)',
    )
    .argument('<address>', 'topic:partition:offset, as `dlq list` prints it')
    .option('--schema <name>', 'PostgreSQL schema of the platform', 'lt_platform')
    .option('--json', 'machine-readable output', false)
    .addHelpText(
      'after',
      '\nNeeds SCHEMA_REGISTRY_URL to decode.\nExample:\n  lienthong dlq show lt.dlq.ngdb:0:17',
    )
    .action((address: string, options: { schema: string; json: boolean }) => runShow(address, options));
  withFilters(
    dlq
      .command('redrive')
      .description(
        'check the selected dead letters again and reprocess those that now pass through their stage (after a\n' +
          'schema fix or a key registration); report what still fails (exit 4), leave it open',
      )
      .argument('[addresses...]', 'topic:partition:offset of each, instead of or beside filters'),
  )
    .option('--dry-run', 'only say what would be redriven', false)
    .addHelpText(
      'after',
      filterHelp +
        '\nAn NGDB dead letter goes back, original bytes, through lt.redrive.ngdb (read by the NGDB sink); a\n' +
        'coordinator dead letter re-derives its agreement from the start of the source topic (a reshare).\n' +
        'Dead letters of an agency’s ingest or sink are its Agent Node’s to redrive. Audited.\n' +
        'Examples:\n  lienthong dlq redrive --stage ngdb --code LT_SCHEMA_NOT_OF_TOPIC --dry-run\n' +
        '  lienthong dlq redrive lt.dlq.ngdb:0:17 lt.dlq.ngdb:0:18',
    )
    .action((addresses: string[], options: CommonOptions & { dryRun: boolean }) =>
      runRedrive(addresses, options),
    );
  withFilters(
    dlq
      .command('discard')
      .description('mark the selected dead letters as dropped on purpose, with a reason; audited')
      .argument('[addresses...]', 'topic:partition:offset of each, instead of or beside filters'),
  )
    .option('--reason <text>', 'why they may be dropped (required; kept in the audit trail)')
    .addHelpText(
      'after',
      filterHelp +
        '\nExample:\n  lienthong dlq discard --stage ngdb --code LT_DECODE_FAILED --reason "test traffic from BCA staging, ticket 4411"',
    )
    .action((addresses: string[], options: CommonOptions & { reason?: string }) =>
      runDiscard(addresses, options),
    );
  return dlq;
}

/** `lienthong reshare --agreement <id>`: the coordinator re-derives one agreement's stream. */
export function reshareCommand(): Command {
  return new Command('reshare')
    .description(
      'have the coordinator re-derive one agreement’s stream from the start of its source topic (a new\n' +
        'revision, same fields and filter: the subscriber’s copy is replaced, keys no longer shared deleted); audited',
    )
    .requiredOption('--agreement <id>', 'the agreement, e.g. bhxh-citizen-01')
    .option(
      '--reason <text>',
      'why (kept in the agreement’s trail and the audit)',
      're-derived on an operator’s request',
    )
    .option('--schema <name>', 'PostgreSQL schema of the agreements', 'lt_platform')
    .addHelpText(
      'after',
      '\nThe running coordinator picks the new revision up within a second.\n' +
        'Example:\n  lienthong reshare --agreement bhxh-citizen-01 --reason "subscriber restored its database from a backup"',
    )
    .action(async (options: { agreement: string; reason: string; schema: string }) => {
      const env = readEnv();
      const dictionary = loadDictionary();
      const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
      try {
        await migrate(pool, 'platform');
        const agreement = await reshareAgreement(new AgreementStore(pool, dictionary), pool, {
          agreementId: options.agreement,
          reason: options.reason,
          principal: principalOf(env),
        });
        console.log(
          `agreement ${agreement.id} is re-derived as revision ${agreement.revision}; the coordinator backfills it from the start of its source topic`,
        );
      } finally {
        await pool.end();
      }
    });
}

/**
 * The ops console's dead-letter drill-down: the open records of one dead-letter topic, newest first, and one record
 * in full — read like `dlq list` and `dlq show`, through the console's own broker client and platform pool.
 */
export function consoleDeadLetters(
  env: Env,
  { kafka, pool, dictionary }: { kafka: DeadLetterSources['kafka']; pool: Pool; dictionary: Dictionary },
  log: Logger,
): {
  list(topic: string, limit: number): Promise<DeadLetterView[]>;
  show(topic: string, partition: number, offset: string): Promise<DeadLetterDetail | null>;
} {
  const store = new AgreementStore(pool, dictionary);
  const sources = async (): Promise<DeadLetterSources> => ({
    kafka,
    pool,
    dictionary,
    agreements: await store.list(),
    timeoutMs: 15_000,
  });
  let registry: SchemaRegistry | undefined;
  return {
    async list(topic, limit) {
      const kind = topicKind(topic);
      if (kind.kind !== 'dead-letter') return [];
      const filter = parseDeadLetterFilter({ stage: kind.stage, agency: kind.agency }, dictionary);
      const views = await listDeadLetters(await sources(), { filter });
      return views
        .filter((view) => view.topic === topic)
        .reverse()
        .slice(0, limit);
    },
    async show(topic, partition, offset) {
      registry ??= registryOf(env, log);
      try {
        return await showDeadLetter(await sources(), registry, { topic, partition, offset });
      } catch (error) {
        if (error instanceof LtError && error.code === 'LT_DEAD_LETTER_UNKNOWN') return null;
        throw error;
      }
    },
  };
}
