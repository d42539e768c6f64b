import { userInfo } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { readEnv } from '../../infra/config/options.ts';
import { exitCodeOf, isLtError } from '../../infra/errors.ts';
import { createHttpServer, listen } from '../../infra/http/server.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import {
  AgreementStatuses,
  AgreementStore,
  EndPolicies,
  isActive,
  registerAgreementRoutes,
  SharingMethods,
  type Agreement,
  type AgreementEvent,
  type AgreementInput,
  type AgreementProblem,
  type AgreementStatus,
  type Degradation,
  type EndPolicy,
  type SharingMethod,
} from '../../platform/agreements/index.ts';
import { cachedCheck, credentialsUnder } from '../../infra/http/principal-auth.ts';
import { platformServerTls } from '../../infra/security/pki.ts';
import { caFile } from '../../infra/security/principals.ts';
import { loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';

/** Options every `agreement` subcommand understands (declared on the group). */
interface GroupOptions {
  schema: string;
  actor: string;
}

function defaultActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new InvalidArgumentError('expected a port 0–65535 (0 = any free port)');
  return parsed;
}

/** `--methods sync,query`: the decree methods, each one of SharingMethods. */
function methodList(value: string): SharingMethod[] {
  const methods = commaList(value);
  const unknown = methods.filter((method) => !(SharingMethods as readonly string[]).includes(method));
  if (methods.length === 0 || unknown.length > 0)
    throw new InvalidArgumentError(
      `expected a comma-separated list of ${SharingMethods.join(', ')} (sync = method (b), the share stream; ` +
        'query = method (a), the query API; media = method (d), packages)',
    );
  return methods as SharingMethod[];
}

function commaList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Opens the platform database (schema `--schema`), applies the `platform` migrations, runs `work`. */
async function withStore<T>(
  options: GroupOptions,
  work: (store: AgreementStore, dictionary: Dictionary) => Promise<T>,
): Promise<T> {
  const env = readEnv();
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
  try {
    await migrate(pool, 'platform');
    const dictionary = loadDictionary();
    return await work(new AgreementStore(pool, dictionary), dictionary);
  } finally {
    await pool.end();
  }
}

/**
 * Prints the problems of an LT_AGREEMENT_INVALID one per line, with a caret under each filter problem's
 * position, and sets its exit code (5, refused); any other error is rethrown for main.ts to print.
 */
function reportInvalid(error: unknown, filterText?: string): void {
  if (!isLtError(error, 'LT_AGREEMENT_INVALID')) throw error;
  const problems = (error.details.problems ?? []) as AgreementProblem[];
  console.error(`\nlienthong: ${error.code}: ${String(error.details.summary ?? 'the agreement is invalid')}`);
  for (const problem of problems) {
    console.error(`  ${problem.field}: ${problem.message}`);
    if (problem.position !== undefined && filterText !== undefined && !filterText.includes('\n')) {
      console.error(`      ${filterText}\n      ${' '.repeat(problem.position)}^`);
    }
  }
  process.exitCode = exitCodeOf(error);
}

function when(date: Date | null): string {
  return date ? date.toISOString().replace('.000Z', 'Z') : '—';
}

/** One line per audit row, for people: what changed, from what to what, and why. */
function describeEvent(event: AgreementEvent): string {
  const detail = event.detail as Record<string, unknown>;
  const text = (value: unknown): string => (Array.isArray(value) ? value.join(',') : String(value ?? '—'));
  if (event.action === 'create') {
    return `${text(detail.subscriber)} ← ${text(detail.dataset)} [${text(detail.fields)}] where ${text(detail.filter)}`;
  }
  if (event.action === 'update') {
    const changed = (detail.changed ?? {}) as Record<string, { from: unknown; to: unknown }>;
    const revision = detail.revision as { from: number; to: number } | undefined;
    return [
      ...Object.entries(changed).map(
        ([name, change]) => `${name}: ${text(change.from)} → ${text(change.to)}`,
      ),
      ...(revision && revision.from !== revision.to ? [`revision ${revision.from} → ${revision.to}`] : []),
    ].join('; ');
  }
  const onEnd = detail.onEnd as { to: string } | undefined;
  return `${text(detail.from)} → ${text(detail.to)}${detail.reason ? `: ${text(detail.reason)}` : ''}${onEnd ? ` (on end: ${onEnd.to})` : ''}`;
}

/**
 * An agreement as plain data for `--json`: every stored field with ISO times, the filter as its text (not its
 * syntax tree), and whether it is active now.
 */
function agreementJson(agreement: Agreement, now = new Date()): Record<string, unknown> {
  const { filter: _ast, ...fields } = agreement;
  return { ...fields, active: isActive(agreement, now) };
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

function printAgreements(agreements: Agreement[]): void {
  if (agreements.length === 0) {
    console.log('no agreements');
    return;
  }
  const now = new Date();
  printTable(
    ['id', 'status', 'active', 'subscriber', 'dataset', 'methods', 'rev', 'valid to', 'fields', 'filter'],
    agreements.map((agreement) => [
      agreement.id,
      agreement.status,
      isActive(agreement, now) ? 'yes' : 'no',
      agreement.subscriber,
      agreement.dataset,
      agreement.methods.join(','),
      String(agreement.revision),
      when(agreement.validTo),
      agreement.fields.join(','),
      agreement.filterText,
    ]),
  );
}

function printAgreement(agreement: Agreement, degraded?: Degradation): void {
  printTable(
    ['agreement', agreement.id],
    [
      ['status', `${agreement.status}${agreement.statusReason ? ` — ${agreement.statusReason}` : ''}`],
      ['active now', isActive(agreement) ? 'yes' : 'no'],
      ['subscriber', agreement.subscriber],
      ['dataset', agreement.dataset],
      ['fields', agreement.fields.join(', ')],
      ['filter', agreement.filterText],
      ['methods', agreement.methods.join(', ')],
      ['purpose', agreement.purpose],
      ['legal basis', agreement.legalBasis],
      [
        'valid',
        `${when(agreement.validFrom)} → ${agreement.validTo ? when(agreement.validTo) : 'until revoked'}`,
      ],
      ['on end', agreement.onEnd],
      ['revision', String(agreement.revision)],
      ['share topic', `lt.share.${agreement.id}`],
      [
        'stream',
        degraded
          ? `DEGRADED since ${when(degraded.since)} (revision ${degraded.revision}, ${degraded.attempts} attempts, ` +
            `next ${when(degraded.nextAttemptAt)}) — ${degraded.code}: ${degraded.reason}`
          : !agreement.methods.includes('sync')
            ? 'none (the agreement does not allow sync)'
            : isActive(agreement)
              ? 'derived by the coordinator (no failure reported)'
              : 'not derived (not active)',
      ],
    ],
  );
}

/**
 * The agreements of DOMAIN.md's "Sample agreements" table (decree method (b)). The NGDB row is not an
 * agreement: it is method (c), served by the NGDB sink. land.parcel has no province field, so "province
 * 01" is the communes the dictionary places in province 01.
 */
export function sampleAgreements(dictionary: Dictionary): AgreementInput[] {
  // "province 01" (DOMAIN.md) tested on the shared commune code: a filter may test only shared fields
  const inProvince = (province: string): string => {
    const communes = (dictionary.codeLists.get('commune')?.codes ?? [])
      .filter((code) => code.parent === province)
      .map((code) => `"${code.code}"`);
    return communes.length > 0 ? `commune_code in [${communes.join(', ')}]` : 'not true';
  };
  const method = 'Decree 278/2025/ND-CP, sharing method (b)';
  return [
    {
      id: 'ubnd-hn-citizen',
      subscriber: 'UBND-HN',
      dataset: 'population.citizen',
      fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'commune_code'],
      filter: inProvince('01'),
      purpose: 'local administrative procedures',
      legalBasis: method,
    },
    {
      id: 'ubnd-hcm-citizen',
      subscriber: 'UBND-HCM',
      dataset: 'population.citizen',
      fields: ['personal_id', 'full_name', 'birth_date', 'commune_code'],
      filter: inProvince('79'),
      purpose: 'local administrative procedures',
      legalBasis: method,
    },
    {
      id: 'bhxh-citizen',
      subscriber: 'BHXH',
      dataset: 'population.citizen',
      fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'permanent_address'],
      purpose: 'social insurance enrolment',
      legalBasis: method,
    },
    {
      id: 'btc-citizen',
      subscriber: 'BTC',
      dataset: 'population.citizen',
      fields: ['personal_id', 'full_name'],
      purpose: 'tax identification (the personal ID serves as the tax code)',
      legalBasis: method,
    },
    {
      id: 'bca-enterprise',
      subscriber: 'BCA',
      dataset: 'business.enterprise',
      fields: ['enterprise_code', 'name', 'legal_representative_id', 'head_office_commune_code'],
      purpose: 'security management',
      legalBasis: method,
    },
    {
      id: 'ubnd-hn-parcel',
      subscriber: 'UBND-HN',
      dataset: 'land.parcel',
      fields: ['parcel_id', 'commune_code', 'area_m2', 'land_use_purpose'],
      filter: inProvince('01'),
      purpose: 'land administration',
      legalBasis: method,
    },
  ];
}

interface CreateOptions {
  id: string;
  subscriber: string;
  dataset: string;
  fields: string[];
  filter: string;
  purpose: string;
  legalBasis: string;
  validFrom?: string;
  validTo?: string;
  onEnd: EndPolicy;
  methods: SharingMethod[];
}

interface UpdateOptions {
  fields?: string[];
  filter?: string;
  validTo?: string;
  methods?: SharingMethod[];
}

const EXAMPLES = `
Agreements are decree method (b): which agency receives which fields and rows of which dataset, why and
on what legal basis. A request starts as "requested"; an approved one within its validity is shared
on lt.share.<id>. Stored in DATABASE_URL, PostgreSQL schema lt_platform (--schema).

Examples:
  npm run lienthong -- agreement create --id ubnd-hn-citizen --subscriber UBND-HN \\
    --dataset population.citizen --fields personal_id,full_name,birth_date,gender,commune_code \\
    --filter 'province_code == "01"' --purpose 'local administrative procedures' \\
    --legal-basis 'Decree 278/2025/ND-CP, sharing method (b)' --valid-to 2027-12-31
  npm run lienthong -- agreement approve ubnd-hn-citizen
  npm run lienthong -- agreement suspend ubnd-hn-citizen --reason 'security review of the Agent Node'
  npm run lienthong -- agreement list --status approved
  npm run lienthong -- agreement show ubnd-hn-citizen
  npm run lienthong -- agreement seed-samples

Filter grammar: docs/agreements.md (and platform/agreements/filter.ts).`;

/** `lienthong agreement …`: the sharing-agreement command group. */
export function agreementCommand(): Command {
  const group = new Command('agreement')
    .description(
      'sharing agreements (decree method (b)): request, approve, refuse, suspend, resume, revoke, list',
    )
    .option('--schema <name>', 'PostgreSQL schema holding the agreements', 'lt_platform')
    .option('--actor <who>', 'who makes the change, written into the audit trail', defaultActor())
    .addHelpText('after', EXAMPLES);
  const groupOptions = (command: Command): GroupOptions => command.optsWithGlobals<GroupOptions>();

  group
    .command('create')
    .description('request a new agreement (status requested); the key field is always shared')
    .requiredOption('--id <id>', 'names the share topic lt.share.<id>, e.g. ubnd-hn-citizen')
    .requiredOption('--subscriber <agency>', 'the receiving agency, e.g. UBND-HN')
    .requiredOption('--dataset <id>', 'the dataset, e.g. population.citizen')
    .requiredOption('--fields <a,b,c>', 'comma-separated fields to share', commaList)
    .option('--filter <text>', 'which rows, e.g. \'province_code == "01"\'', 'true')
    .requiredOption('--purpose <text>', 'why the subscriber needs the data')
    .requiredOption('--legal-basis <text>', 'the law that allows it, e.g. "Decree 278/2025/ND-CP"')
    .option('--valid-from <date>', 'YYYY-MM-DD (00:00 Vietnam time) or an ISO timestamp; default now')
    .option('--valid-to <date>', 'exclusive end; default until revoked')
    .addOption(
      new Option('--on-end <policy>', 'what the subscriber does with its copy at the end')
        .choices(EndPolicies)
        .default('purge'),
    )
    .option(
      '--methods <a,b>',
      'decree methods allowed: sync (b, the share stream), query (a, the query API), media (d, packages)',
      methodList,
      ['sync'] as SharingMethod[],
    )
    .addHelpText(
      'after',
      `\nExample:\n  npm run lienthong -- agreement create --id btc-citizen --subscriber BTC --dataset population.citizen \\\n    --fields personal_id,full_name --purpose 'tax identification' --legal-basis 'Decree 278/2025/ND-CP'`,
    )
    .action(async (options: CreateOptions, command: Command) => {
      await withStore(groupOptions(command), async (store) => {
        try {
          const agreement = await store.create(
            {
              id: options.id,
              subscriber: options.subscriber,
              dataset: options.dataset,
              fields: options.fields,
              filter: options.filter,
              purpose: options.purpose,
              legalBasis: options.legalBasis,
              onEnd: options.onEnd,
              methods: options.methods,
              ...(options.validFrom === undefined ? {} : { validFrom: options.validFrom }),
              ...(options.validTo === undefined ? {} : { validTo: options.validTo }),
            },
            groupOptions(command).actor,
          );
          printAgreement(agreement);
          console.log(`\nrequested; approve with: npm run lienthong -- agreement approve ${agreement.id}`);
        } catch (error) {
          reportInvalid(error, options.filter);
        }
      });
    });

  const step = (name: 'approve' | 'resume', description: string): void => {
    group
      .command(name)
      .description(description)
      .argument('<id>', 'the agreement id')
      .action(async (id: string, _options: unknown, command: Command) => {
        await withStore(groupOptions(command), async (store) => {
          try {
            printAgreement(await store[name](id, groupOptions(command).actor));
          } catch (error) {
            reportInvalid(error);
          }
        });
      });
  };
  step('approve', 'requested → approved: the coordinator starts sharing once validFrom is reached');
  step('resume', 'suspended → approved');

  const reasoned = (name: 'refuse' | 'suspend', description: string, reasonHelp: string): void => {
    group
      .command(name)
      .description(description)
      .argument('<id>', 'the agreement id')
      .requiredOption('--reason <text>', reasonHelp)
      .action(async (id: string, options: { reason: string }, command: Command) => {
        await withStore(groupOptions(command), async (store) => {
          try {
            printAgreement(await store[name](id, options.reason, groupOptions(command).actor));
          } catch (error) {
            reportInvalid(error);
          }
        });
      });
  };
  reasoned(
    'refuse',
    'requested → refused (final)',
    'the written reason, citing its legal basis (Decree 194/2025 art. 16)',
  );
  reasoned('suspend', 'approved → suspended: sharing pauses until resumed', 'why sharing pauses');

  group
    .command('revoke')
    .description(
      'approved or suspended → revoked (final): sharing ends; the subscriber purges or retains its copy',
    )
    .argument('<id>', 'the agreement id')
    .requiredOption('--reason <text>', 'why the agreement ends')
    .addOption(new Option('--on-end <policy>', 'override the agreement’s end policy').choices(EndPolicies))
    .action(async (id: string, options: { reason: string; onEnd?: EndPolicy }, command: Command) => {
      await withStore(groupOptions(command), async (store) => {
        try {
          printAgreement(await store.revoke(id, options.reason, groupOptions(command).actor, options.onEnd));
        } catch (error) {
          reportInvalid(error);
        }
      });
    });

  group
    .command('update')
    .description(
      'change fields, filter, validTo or methods; a change of fields or filter raises the revision, and one that may share more sends an approved agreement back for approval',
    )
    .argument('<id>', 'the agreement id')
    .option('--fields <a,b,c>', 'the new comma-separated field list', commaList)
    .option('--filter <text>', 'the new row filter')
    .option('--valid-to <date>', 'the new exclusive end, or "none" for until revoked')
    .option(
      '--methods <a,b>',
      'the new decree methods (sync, query, media); adding one needs approval again, sync cannot be dropped',
      methodList,
    )
    .addHelpText(
      'after',
      `\nExample:\n  npm run lienthong -- agreement update ubnd-hn-citizen --fields personal_id,full_name,birth_date`,
    )
    .action(async (id: string, options: UpdateOptions, command: Command) => {
      await withStore(groupOptions(command), async (store) => {
        try {
          const validTo = options.validTo === 'none' ? null : options.validTo;
          printAgreement(
            await store.update(
              id,
              {
                ...(options.fields === undefined ? {} : { fields: options.fields }),
                ...(options.filter === undefined ? {} : { filter: options.filter }),
                ...(validTo === undefined ? {} : { validTo }),
                ...(options.methods === undefined ? {} : { methods: options.methods }),
              },
              groupOptions(command).actor,
            ),
          );
        } catch (error) {
          reportInvalid(error, options.filter);
        }
      });
    });

  group
    .command('list')
    .description('the agreements, by id')
    .addOption(new Option('--status <status>', 'only this status').choices(AgreementStatuses))
    .option('--dataset <id>', 'only this dataset')
    .option('--subscriber <agency>', 'only this subscriber')
    .option('--json', 'print the agreements as a JSON array', false)
    .action(
      async (
        options: { status?: AgreementStatus; dataset?: string; subscriber?: string; json: boolean },
        command: Command,
      ) => {
        await withStore(groupOptions(command), async (store) => {
          const agreements = await store.list({
            ...(options.status ? { status: options.status } : {}),
            ...(options.dataset ? { dataset: options.dataset } : {}),
            ...(options.subscriber ? { subscriber: options.subscriber } : {}),
          });
          if (options.json) printJson(agreements.map((agreement) => agreementJson(agreement)));
          else printAgreements(agreements);
        });
      },
    );

  group
    .command('show')
    .description('one agreement and its audit trail')
    .argument('<id>', 'the agreement id')
    .option('--json', 'print { agreement, degraded, events } as one JSON object', false)
    .action(async (id: string, options: { json: boolean }, command: Command) => {
      await withStore(groupOptions(command), async (store) => {
        const agreement = await store.get(id);
        const degraded = (await store.degradations()).get(id);
        if (options.json) {
          printJson({
            agreement: agreementJson(agreement),
            degraded: degraded ?? null,
            events: await store.events(id),
          });
          return;
        }
        printAgreement(agreement, degraded);
        printTable(
          ['#', 'at', 'actor', 'action', 'detail'],
          (await store.events(id)).map((event) => [
            String(event.seq),
            when(event.at),
            event.actor,
            event.action,
            describeEvent(event),
          ]),
        );
      });
    });

  group
    .command('expire-due')
    .description('mark approved and suspended agreements whose validTo has passed as expired')
    .option('--json', 'print the agreements it expired as a JSON array', false)
    .action(async (options: { json: boolean }, command: Command) => {
      await withStore(groupOptions(command), async (store) => {
        const expired = await store.expireDue();
        if (options.json) printJson(expired.map((agreement) => agreementJson(agreement)));
        else if (expired.length === 0) console.log('nothing to expire');
        else printAgreements(expired);
      });
    });

  group
    .command('seed-samples')
    .description('create and approve the sample agreements of DOMAIN.md (idempotent); the NGDB needs none')
    .action(async (_options: unknown, command: Command) => {
      const { actor } = groupOptions(command);
      await withStore(groupOptions(command), async (store, dictionary) => {
        const rows: string[][] = [];
        for (const input of sampleAgreements(dictionary)) {
          let agreement = await store.find(input.id);
          let done = 'already there';
          if (!agreement) {
            agreement = await store.create(input, actor);
            done = 'created';
          }
          if (agreement.status === 'requested') {
            agreement = await store.approve(agreement.id, actor);
            done = done === 'created' ? 'created, approved' : 'approved';
          }
          rows.push([
            agreement.id,
            agreement.subscriber,
            agreement.dataset,
            agreement.status,
            done,
            agreement.filterText,
          ]);
        }
        printTable(['id', 'subscriber', 'dataset', 'status', 'done', 'filter'], rows);
        console.log(
          '\nthe NGDB (TTDLQG) receives every dataset by law (method (c), the NGDB sink): no agreement',
        );
      });
    });

  group
    .command('serve')
    .description(
      'serve the agreement admin API (/v1/agreements) over TLS; every caller authenticates with HTTP Basic\n' +
        'as its principal (the credential `lienthong credentials` issued) and may take only its own steps',
    )
    .option('--port <port>', 'HTTPS port (0 = any free port)', port, 8082)
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .addHelpText(
      'after',
      '\nExample (UBND-HN requests, BCA approves):\n' +
        '  curl --cacert ~/.cache/lienthong/security/ca/ca.crt -u agency.UBND-HN:"$PASSWORD" \\\n' +
        '    https://127.0.0.1:8082/v1/agreements -H content-type:application/json -d @request.json',
    )
    .action(async (options: { port: number; host: string }, command: Command) => {
      await withStore(groupOptions(command), async (store, dictionary) => {
        const env = readEnv();
        const app = createHttpServer(
          createLogger(env.LOG_LEVEL),
          platformServerTls(env.LIENTHONG_HOME, 'lt-platform', options.host),
        );
        registerAgreementRoutes(app, store, {
          check: cachedCheck(credentialsUnder(env.LIENTHONG_HOME)),
          dictionary,
        });
        const url = await listen(app, options.port, options.host);
        console.log(
          `agreement API at ${url}/v1/agreements — TLS (trust ${caFile(env.LIENTHONG_HOME)}), HTTP Basic as a principal. ` +
            'Ctrl-C stops it.',
        );
        await new Promise<void>((done) => {
          process.once('SIGINT', done);
          process.once('SIGTERM', done);
        });
        await app.close();
      });
    });

  return group;
}
