import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { runBroker } from './commands/broker.ts';
import { runDemo } from './commands/demo.ts';
import { runAgent, runSnapshotCommand, type SnapshotCommandOptions } from './commands/agent.ts';
import { agreementCommand } from './commands/agreement.ts';
import { queryCommand } from './commands/query.ts';
import * as dictionary from './commands/dictionary.ts';
import { dlqCommand, reshareCommand } from './commands/dlq.ts';
import { runCoordinator, runNgdb } from './commands/platform.ts';
import { runConsole } from './commands/console.ts';
import {
  runExport,
  runImport,
  runKeysIssue,
  runVerify,
  type ExportCommandOptions,
  type ImportCommandOptions,
} from './commands/packages.ts';
import { runRebuild, type RebuildCommandOptions } from './commands/rebuild.ts';
import { runReplay, type ReplayCommandOptions } from './commands/replay.ts';
import { runAclSync, runCredentials } from './commands/security.ts';
import { runTopicsSync } from './commands/topics.ts';
import { runStatus, type StatusOptions } from './commands/status.ts';
import { exitOverrideEverywhere, reportFailure } from './exit.ts';
import { OPS_PORTS } from '../infra/observability/index.ts';
import { logToStderr } from '../infra/logging/logger.ts';
import type { OpsFlags } from './ops.ts';

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return parsed;
}
function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new InvalidArgumentError('expected a port 0–65535 (0 = any free port)');
  return parsed;
}

/** `--ops-port` and `--ops-host` of a long-running command; its default port is in docs/observability.md. */
function withOpsFlags(command: Command, defaultPort: number): Command {
  return command
    .option('--ops-port <port>', `ops port: /health /ready /metrics (default ${defaultPort})`, port)
    .option('--ops-host <host>', 'interface the ops port binds (default 127.0.0.1)');
}

function instant(value: string): Date {
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(at.getTime()))
    throw new InvalidArgumentError('expected an ISO 8601 time with a zone, e.g. 2026-06-30T17:00:00Z');
  return at;
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const program = new Command()
  .name('lienthong')
  .description(
    'lienthong — the event-streaming Data Sharing and Coordination Platform (Decree 278/2025/ND-CP).\n\n' +
      'Services come from the environment: KAFKA_BROKERS (unset: a local broker is started), REDIS_URL\n' +
      '(default redis://127.0.0.1:6379; with REDIS_CLUSTER=1 the comma-separated seed nodes of a Redis Cluster),\n' +
      'DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),\n' +
      'SCHEMA_REGISTRY_URL (unset: the platform serves its own), LIENTHONG_HOME (default ~/.cache/lienthong).',
  )
  .version(`lienthong ${packageVersion} on Node ${process.versions.node}`, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  // with --json, stdout is the command's output alone: its logs go to stderr
  .hook('preAction', (_program, action) => {
    if ((action.opts() as { json?: boolean }).json) logToStderr();
  });

program
  .command('demo')
  .description(
    'publish sample citizens through BCA’s Agent Node, materialize them into PostgreSQL, print what went where',
  )
  .option('--citizens <n>', 'how many citizens to create', positiveInt, 2000)
  .option('--batch <n>', 'events per publish call', positiveInt, 500)
  .addHelpText('after', '\nExample:\n  npm run demo -- --citizens 10000')
  .action(async (options: { citizens: number; batch: number }) => runDemo(options));

const broker = program
  .command('broker')
  .description('run Apache Kafka locally (KRaft: one node, or a cluster) for development and tests');
broker
  .command('start')
  .description('fetch the Kafka jars if needed, start a broker (or a cluster), stop it on Ctrl-C')
  .option('--port <port>', 'client port (single broker)', port, 9092)
  .option('--controller-port <port>', 'KRaft controller port (single broker)', port, 9093)
  .option(
    '--brokers <n>',
    'nodes in a KRaft cluster, each broker and controller; 3 survives losing one (free ports are picked)',
    positiveInt,
    1,
  )
  .option(
    '--data-dir <dir>',
    'storage (default $LIENTHONG_HOME/run/broker, or run/cluster for --brokers > 1)',
  )
  .option('--fresh', 'wipe the storage first', false)
  .option(
    '--insecure',
    'plaintext, no authentication, no ACLs (a developer’s machine only; also LIENTHONG_INSECURE=1). By default\n' +
      'the broker runs TLS + SCRAM-SHA-512, mutual TLS to the controllers, nothing allowed unless an ACL grants it\n' +
      '(the CA, certificates and the lt-admin credential are made under $LIENTHONG_HOME/security)',
    false,
  )
  .addHelpText(
    'after',
    '\nExamples:\n  npx lienthong broker start\n  npx lienthong broker start --brokers 3 --fresh   # replication 3, min.insync.replicas 2\n' +
      '  then: npx lienthong credentials issue --agency BCA; npx lienthong acl sync (docs/security.md)',
  )
  .action(
    async (options: {
      port: number;
      controllerPort: number;
      dataDir?: string;
      fresh: boolean;
      brokers: number;
      insecure: boolean;
    }) => runBroker(options),
  );

const dict = program
  .command('dictionary')
  .description(
    'the Shared Data Dictionary: datasets, code lists, agencies (schemas/dictionary/), their schemas and catalog',
  );
dict
  .command('lint')
  .description('check every dictionary file against every rule; lists file:line for each problem')
  .option('--dir <dir>', 'dictionary folder', 'schemas/dictionary')
  .option('--json', 'print the problems as one JSON object', false)
  .action((options: { dir: string; json: boolean }) => dictionary.lint(options.dir, options.json));
dict
  .command('diff')
  .description('explain which schema changes break which readers, and whether the registry would refuse them')
  .argument('<old>', 'dictionary folder, or git:<revision> (e.g. git:HEAD~1)')
  .argument('[new]', 'dictionary folder, or git:<revision>', 'schemas/dictionary')
  .option('--json', 'print the comparison as one JSON object', false)
  .addHelpText(
    'after',
    '\nExamples:\n  npm run lienthong -- dictionary diff git:HEAD\n  npm run lienthong -- dictionary diff /tmp/old-dictionary schemas/dictionary',
  )
  .action((oldWhere: string, newWhere: string, options: { json: boolean }) =>
    dictionary.diff(oldWhere, newWhere, options.json),
  );
dict
  .command('publish')
  .description('register every dataset’s key and value subjects in the schema registry (idempotent)')
  .option('--registry <url>', 'registry URL (default SCHEMA_REGISTRY_URL)')
  .action(async (options: { registry?: string }) => dictionary.publish(options.registry));
dict
  .command('show')
  .description('print the catalog: datasets, fields and classifications, owners, connection results')
  .argument('[dataset]', 'one dataset id, e.g. population.citizen')
  .option('--json', 'machine-readable output', false)
  .action(async (datasetId: string | undefined, options: { json: boolean }) =>
    dictionary.show(datasetId, options.json),
  );
dict
  .command('generate')
  .description('regenerate the TypeScript record types (schemas/generated/datasets.ts)')
  .action(() => dictionary.generate());
dict
  .command('serve')
  .description(
    'serve the schema registry (Confluent REST API, stored in PostgreSQL) and the catalog API over TLS; every\n' +
      'caller authenticates with HTTP Basic as its principal (plaintext and open only with LIENTHONG_INSECURE=1)',
  )
  .option('--port <port>', 'HTTPS port', port, 8081)
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .option('--schema <name>', 'PostgreSQL schema holding the registry', 'lt_registry')
  .option(
    '--platform-schema <name>',
    'PostgreSQL schema of the agreements (the catalog lists them, degraded ones with the reason)',
    'lt_platform',
  )
  .action(async (options: dictionary.ServeOptions) => dictionary.serve(options));
withOpsFlags(
  dict.commands.find((command) => command.name() === 'serve')!,
  OPS_PORTS.registry,
);

program.addCommand(agreementCommand());
program.addCommand(dlqCommand());
program.addCommand(reshareCommand());
program.addCommand(queryCommand());

program
  .command('agent')
  .description('run an agency’s Agent Node: the only process holding its credentials; publishes its datasets')
  .requiredOption('--agency <code>', 'the agency, e.g. BCA (must match the config file)')
  .requiredOption('--config <file>', 'the Agent Node configuration (YAML; see docs/agent-node.md)')
  .addHelpText(
    'after',
    '\nExample:\n  npm run lienthong -- agent --agency BCA --config infra/agent/bca.example.yaml',
  )
  .action(async (options: { agency: string; config: string } & OpsFlags) => runAgent(options));
withOpsFlags(program.commands.at(-1)!, OPS_PORTS.agent);

program
  .command('snapshot')
  .description(
    'publish an existing register as SNAPSHOT events: resumable, with progress, handing over to live changes',
  )
  .requiredOption('--agency <code>', 'the owner agency, e.g. BCA')
  .requiredOption('--config <file>', 'the agency’s Agent Node configuration')
  .requiredOption('--dataset <id>', 'the dataset the register holds, e.g. population.citizen')
  .requiredOption(
    '--from <source>',
    'the agency database holding the register: env:NAME or file:PATH holding its URL\n' +
      '(a URL with a password on the command line is refused: others can read process arguments)',
  )
  .requiredOption('--table <name>', 'the register table or view (columns named after the dataset fields)')
  .option('--version-column <name>', 'the column with each row’s current version', 'version')
  .option('--batch <n>', 'rows per page and checkpoint', positiveInt, 2000)
  .option('--restart', 'ignore the checkpoint of an earlier run', false)
  .addHelpText(
    'after',
    '\nExample:\n  npm run lienthong -- snapshot --agency BCA --config infra/agent/bca.example.yaml \\\n    --dataset population.citizen --from env:BCA_REGISTER_URL --table registry.citizen\n\nCtrl-C stops after the page in flight; the same command resumes.',
  )
  .action(async (options: SnapshotCommandOptions) => runSnapshotCommand(options));

program
  .command('topics')
  .description('the Kafka topics of the platform, provisioned from the dictionary and the agreements')
  .command('sync')
  .description(
    'create or update every source, share and dead-letter topic with explicit partitions, retention,\n' +
      'replication factor and min.insync.replicas; print what differs (exit 3 when a difference needs an operator)',
  )
  .option('--dry-run', 'only print the differences', false)
  .option('--json', 'print the wanted topics and the differences as one JSON object', false)
  .option('--schema <name>', 'PostgreSQL schema of the agreements', 'lt_platform')
  .option(
    '--source-partitions <n>',
    'partitions of a new source topic (an existing one keeps its own)',
    positiveInt,
    6,
  )
  .addHelpText(
    'after',
    '\nSource and share topics are kept forever; dead-letter topics LIENTHONG_DLQ_RETENTION_DAYS (default 30).\n' +
      'On 3 or more brokers: replication factor 3, min.insync.replicas 2.\n\n' +
      'Example:\n  KAFKA_BROKERS=127.0.0.1:9092 npx lienthong topics sync --dry-run',
  )
  .action(async (options: { dryRun: boolean; schema: string; sourcePartitions: number; json: boolean }) =>
    runTopicsSync(options),
  );

const credentials = program
  .command('credentials')
  .description(
    'a principal’s SCRAM-SHA-512 credential on the secure cluster (its Agent Node, or a platform service);\n' +
      'kept in $LIENTHONG_HOME/security/credentials/<principal>.json, owner-only, never printed',
  );
for (const [action, text] of [
  ['issue', 'make a credential for a principal that has none'],
  [
    'rotate',
    'replace a principal’s credential (the old one is refused at once; open sessions within a minute)',
  ],
  ['revoke', 'remove a principal’s credential: the broker refuses it'],
] as const)
  credentials
    .command(action)
    .description(text)
    .option('--agency <code>', 'the agency whose Agent Node this is (principal agency.<code>)')
    .option('--principal <name>', 'a platform principal: lt-coordinator, lt-ngdb, lt-registry, lt-operator')
    .addHelpText(
      'after',
      `\nRuns as lt-admin against KAFKA_BROKERS.\nExample:\n  KAFKA_BROKERS=127.0.0.1:9092 npx lienthong credentials ${action} --agency BCA`,
    )
    .action((options: { agency?: string; principal?: string }) => runCredentials(action, options));

program
  .command('acl')
  .description('the broker’s access rules, derived from the dictionary and the agreements')
  .command('sync')
  .description(
    'make the broker’s ACLs exactly what the dictionary and the agreements grant: print every grant and\n' +
      'revocation (a suspended, revoked or expired agreement loses its read), then apply them',
  )
  .option('--dry-run', 'only print the differences', false)
  .option('--json', 'print the changes as one JSON object', false)
  .option('--schema <name>', 'PostgreSQL schema of the agreements', 'lt_platform')
  .option(
    '--watch <seconds>',
    'keep syncing every <seconds> until Ctrl-C: an agreement that ends loses its read within that time',
    positiveInt,
  )
  .addHelpText(
    'after',
    '\nRuns as lt-admin against KAFKA_BROKERS; a second run prints nothing to do.\n' +
      'Example:\n  KAFKA_BROKERS=127.0.0.1:9092 npx lienthong acl sync --dry-run',
  )
  .action(async (options: { dryRun: boolean; schema: string; watch?: number; json: boolean }) =>
    runAclSync(options),
  );

program
  .command('coordinator')
  .description(
    'derive each active sharing agreement’s stream lt.share.<agreement> from the source topics (method (b))',
  )
  .option('--schema <name>', 'PostgreSQL schema of the agreements and the coordinator state', 'lt_platform')
  .action(async (options: { schema: string } & OpsFlags) => runCoordinator(options));
withOpsFlags(program.commands.at(-1)!, OPS_PORTS.coordinator);

program
  .command('ngdb')
  .description(
    'keep the National General Database: current state and full history of every dataset (method (c))',
  )
  .option('--schema <name>', 'PostgreSQL schema of the NGDB', 'lt_ngdb')
  .action(async (options: { schema: string } & OpsFlags) => runNgdb(options));
withOpsFlags(program.commands.at(-1)!, OPS_PORTS.ngdb);

program
  .command('replay')
  .description(
    'move a stopped consumer group back so it re-reads from there: checks, prints the plan, applies, audits',
  )
  .requiredOption(
    '--group <id>',
    'the consumer group: lt.ngdb, lt.coordinator, lt.sink.<agency>.<agreement>, …',
  )
  .option('--to-earliest', 'to the first record each partition still holds')
  .option('--to-datetime <time>', 'to the first record at or after an ISO 8601 time with its zone')
  .option('--by-duration <duration>', 'to the first record of that long ago: 30m, 2h, 7d, 1d12h (s m h d w)')
  .option('--to-offset <topic:partition:offset>', 'one partition to one offset')
  .option(
    '--dataset <id>',
    'only the topics of one dataset: its source topic and its agreements’ share topics',
  )
  .option('--dry-run', 'only print the plan; nothing changes (still audited, as planned)', false)
  .option('--json', 'print the plan as JSON (the same fields the audit trail keeps)', false)
  .option(
    '--schema <name>',
    'PostgreSQL schema of the agreements and the operator audit trail',
    'lt_platform',
  )
  .addHelpText(
    'after',
    '\nA replay only moves a group back: a partition already before the target stays, an offset ahead of the\n' +
      'committed one is refused (it would skip unread records), and so is a time before the start of a trimmed\n' +
      'log (some records after that time are gone). Every sink is idempotent, so the copies end as they were.\n' +
      'Runs as lt-operator (KAFKA_PRINCIPAL overrides); each attempt is appended to operator_audit.\n\n' +
      'Examples:\n' +
      '  # stop the NGDB sink (Ctrl-C on `lienthong ngdb`), look, then replay all of it\n' +
      '  npx lienthong replay --group lt.ngdb --to-earliest --dry-run\n' +
      '  npx lienthong replay --group lt.ngdb --to-earliest\n' +
      '  # re-read the last six hours of one dataset only\n' +
      '  npx lienthong replay --group lt.ngdb --by-duration 6h --dataset population.citizen\n' +
      '  # a subscriber’s copy since a morning (Hà Nội time), or one partition from an offset\n' +
      '  npx lienthong replay --group lt.sink.bhxh.bhxh-insurance --to-datetime 2026-12-01T08:00:00+07:00\n' +
      '  npx lienthong replay --group lt.ngdb --to-offset lt.src.population.citizen:2:1500 --json\n\n' +
      'docs/replay.md has the whole procedure.',
  )
  .action(async (options: ReplayCommandOptions) => runReplay(options));

program
  .command('status')
  .description(
    'the platform at a glance: agencies, datasets, agreements and their state, consumer-group lag,\n' +
      'dead letters, replays and rebuilds in progress (exit 4 when Kafka or PostgreSQL cannot be read)',
  )
  .option(
    '--schema <name>',
    'PostgreSQL schema of the agreements and the operator audit trail',
    'lt_platform',
  )
  .option('--recent <n>', 'how many recent operator actions to list', positiveInt, 5)
  .option('--json', 'the same as one JSON object (docs/cli.md)', false)
  .addHelpText(
    'after',
    '\nRuns as lt-operator (KAFKA_PRINCIPAL overrides) against KAFKA_BROKERS; reads DATABASE_URL. Changes nothing.\n' +
      'Example:\n  KAFKA_BROKERS=127.0.0.1:9092 npx lienthong status --json',
  )
  .action(async (options: StatusOptions) => runStatus(options));

program
  .command('rebuild')
  .description(
    'build a fresh copy of a sink from the start of its stream beside the live one, compare, swap it in',
  )
  .requiredOption('--sink <sink>', 'which copy: ngdb, or agency:<CODE> (a subscriber’s copy; not built yet)')
  .option('--dataset <id>', 'only this dataset’s tables (default: every dataset of the dictionary)')
  .option('--agreement <id>', 'with --sink agency:<CODE>: only the copy of this agreement')
  .option(
    '--schema <name>',
    'PostgreSQL schema of the live NGDB (what lienthong ngdb --schema writes)',
    'lt_ngdb',
  )
  .option(
    '--platform-schema <name>',
    'PostgreSQL schema of the agreements and the operator audit',
    'lt_platform',
  )
  .addHelpText(
    'after',
    '\nHow it works (docs/rebuild.md):\n' +
      '  1. a second NGDB sink (group lt.ngdb.rebuild, as lt-ngdb) reads every lt.src.<dataset> from offset 0\n' +
      '     into <schema>_rebuild while the live sink keeps running; progress shows rate and ETA;\n' +
      '  2. once it has caught up, one transaction holds the live tables against writes (reads go on),\n' +
      '     lets the shadow read the last records, compares row counts and a content checksum per table;\n' +
      '  3. equal: the live tables move to <schema>_previous and the shadow’s take their place, and the\n' +
      '     live sink goes on writing into them; different: nothing is swapped and the differing keys are listed.\n' +
      'Audited in operator_audit (action rebuild). Exit code 5 on a refusal or a mismatch, 2 on a malformed request.\n' +
      'Examples:\n  npx lienthong rebuild --sink ngdb\n  npx lienthong rebuild --sink ngdb --dataset population.citizen --schema lt_ngdb',
  )
  .action(async (options: RebuildCommandOptions) => runRebuild(options));

program
  .command('console')
  .description(
    'the ops console in a browser: agencies, datasets, agreements, live lag per consumer group as a chart,\n' +
      'dead letters with their records and reasons, replays and rebuilds in progress (operators only, over TLS)',
  )
  .option('--port <port>', 'HTTPS port (0 = any free port)', port, 9480)
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .option(
    '--platform-schema <name>',
    'PostgreSQL schema of the agreements and the operator audit trail',
    'lt_platform',
  )
  .addHelpText(
    'after',
    '\nReads KAFKA_BROKERS as lt-operator (KAFKA_PRINCIPAL overrides), DATABASE_URL, and SCHEMA_REGISTRY_URL to decode\n' +
      'dead letters. The browser signs in with HTTP Basic as lt-operator (or lt-admin) and its credential; the page\n' +
      'trusts nothing but its own origin (a strict Content-Security-Policy). docs/console.md.\n' +
      'Example:\n  KAFKA_BROKERS=127.0.0.1:9092 npx lienthong console   # then open https://127.0.0.1:9480/',
  )
  .action(async (options: { port: number; host: string; platformSchema: string }) =>
    runConsole({ port: options.port, host: options.host, schema: options.platformSchema }),
  );

program
  .command('export')
  .description(
    'write a data package for storage media (decree method (d)): the NGDB’s records of a dataset, or exactly an\n' +
      'agreement’s fields and rows, as a signed Avro container file in one package file (docs/packages.md)',
  )
  .requiredOption('--dataset <id>', 'the dataset, e.g. population.citizen')
  .option(
    '--agreement <id>',
    'only what this active agreement shares (its fields, its row filter); the package is for its subscriber',
  )
  .option(
    '--as-of <time>',
    'the state at this source time (ISO 8601 with a zone) instead of the current state',
    instant,
  )
  .requiredOption('--out <file>', 'the package file to write (refused when it exists)')
  .option(
    '--for <agency>',
    'encrypt for this agency’s key (X25519 + AES-256-GCM); only its import can read the package',
  )
  .option(
    '--recipient-key <file>',
    'the agency’s public key (default $LIENTHONG_HOME/security/packages/agencies/<agency>.pub)',
  )
  .option('--schema <name>', 'PostgreSQL schema of the NGDB', 'lt_ngdb')
  .option(
    '--platform-schema <name>',
    'PostgreSQL schema of the agreements and the operator audit',
    'lt_platform',
  )
  .option('--codec <codec>', 'Avro block compression: deflate or null', 'deflate')
  .addHelpText(
    'after',
    '\nThe manifest (dataset, schema, record count, SHA-256 of the records, what the package covers, who made it)\n' +
      'is signed with the platform’s Ed25519 key ($LIENTHONG_HOME/security/packages/signing.key, made at the first\n' +
      'export); an importing site verifies with a copy of signing.pub. Every export is recorded in operator_audit.\n\n' +
      'Examples:\n  npx lienthong export --dataset population.citizen --out /media/usb/citizens.ltpkg\n' +
      '  npx lienthong export --dataset population.citizen --agreement ubnd-hn-citizen --for UBND-HN \\\n' +
      '    --as-of 2026-06-30T17:00:00Z --out /media/usb/ubnd-hn-2026-06-30.ltpkg',
  )
  .action(async (options: Omit<ExportCommandOptions, 'codec'> & { codec: string }) => {
    if (options.codec !== 'deflate' && options.codec !== 'null')
      throw new InvalidArgumentError('--codec: expected deflate or null');
    await runExport({ ...options, codec: options.codec });
  });

program
  .command('import')
  .description(
    'load a data package: verify everything first (signature, every byte, record count, schema, recipient),\n' +
      'then apply it with the versioned upsert; importing twice or an older package changes nothing',
  )
  .argument('<file>', 'the package file')
  .option('--into <target>', 'ngdb (current state + history), or agency:<CODE> (the agency’s copy)', 'ngdb')
  .option(
    '--schema <name>',
    'target PostgreSQL schema (default lt_ngdb; for an agency lt_share_<agreement>, as its subscription)',
  )
  .option(
    '--platform-key <file>',
    'the platform’s public key (default $LIENTHONG_HOME/security/packages/signing.pub)',
  )
  .option(
    '--key <file>',
    'the agency’s private key for an encrypted package (default …/packages/agencies/<CODE>.key)',
  )
  .option('--platform-schema <name>', 'PostgreSQL schema of the operator audit', 'lt_platform')
  .option('--batch <n>', 'records per transaction and checkpoint', positiveInt, 20000)
  .addHelpText(
    'after',
    '\nA refused package loads nothing and says why (LT_PACKAGE_*). An interrupted import (Ctrl-C, a crash)\n' +
      'resumes where it stopped when run again: its checkpoint is the table lt_package_import of the target schema.\n' +
      'Every import, refused ones too, is recorded in operator_audit.\n\n' +
      'Examples:\n  npx lienthong import /media/usb/citizens.ltpkg\n' +
      '  npx lienthong import /media/usb/ubnd-hn-2026-06-30.ltpkg --into agency:UBND-HN --platform-key ./signing.pub',
  )
  .action(async (file: string, options: ImportCommandOptions) => runImport(file, options));

const packages = program
  .command('package')
  .description('data packages on storage media (decree method (d)): keys and checks; see export and import');
packages
  .command('verify')
  .description('every check an import makes, loading nothing; prints the manifest')
  .argument('<file>', 'the package file')
  .option('--into <target>', 'who would import it: ngdb or agency:<CODE>', 'ngdb')
  .option('--platform-key <file>', 'the platform’s public key (default …/packages/signing.pub)')
  .option('--key <file>', 'the agency’s private key for an encrypted package')
  .action(async (file: string, options: { into: string; platformKey?: string; key?: string }) =>
    runVerify(file, options),
  );
packages
  .command('keys')
  .description('the X25519 key pairs packages are encrypted to, one per agency')
  .command('issue')
  .description('make an agency’s key pair under $LIENTHONG_HOME/security/packages/agencies/ (never replaced)')
  .requiredOption('--agency <code>', 'the agency, e.g. UBND-HN')
  .addHelpText(
    'after',
    '\nThe private key is owner-only and belongs at the agency: hand it over on its own medium (or let the agency\n' +
      'make the pair and send only <CODE>.pub). Example:\n  npx lienthong package keys issue --agency UBND-HN',
  )
  .action((options: { agency: string }) => runKeysIssue(options));

// every outcome, commander's own usage errors included, ends with one exit code of docs/cli.md
exitOverrideEverywhere(program);
try {
  await program.parseAsync();
} catch (error) {
  process.exitCode = reportFailure(error);
}
