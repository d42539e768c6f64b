import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { describeError } from '../infra/errors.ts';
import { runBroker } from './commands/broker.ts';
import { runDemo } from './commands/demo.ts';
import { runAgent, runSnapshotCommand, type SnapshotCommandOptions } from './commands/agent.ts';
import { agreementCommand } from './commands/agreement.ts';
import { queryCommand } from './commands/query.ts';
import * as dictionary from './commands/dictionary.ts';
import { runCoordinator, runNgdb } from './commands/platform.ts';
import { runAclSync, runCredentials } from './commands/security.ts';
import { runTopicsSync } from './commands/topics.ts';

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

const packageVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const program = new Command()
  .name('lienthong')
  .description(
    'lienthong — the event-streaming Data Sharing and Coordination Platform (Decree 278/2025/ND-CP).\n\n' +
      'Services come from the environment: KAFKA_BROKERS (unset: a local broker is started), REDIS_URL\n' +
      '(default redis://127.0.0.1:6379), DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),\n' +
      'SCHEMA_REGISTRY_URL (unset: the platform serves its own), LIENTHONG_HOME (default ~/.cache/lienthong).',
  )
  .version(`lienthong ${packageVersion} on Node ${process.versions.node}`, '-V, --version')
  .showHelpAfterError('(run with --help for usage)');

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
  .action((options: { dir: string }) => dictionary.lint(options.dir));
dict
  .command('diff')
  .description('explain which schema changes break which readers, and whether the registry would refuse them')
  .argument('<old>', 'dictionary folder, or git:<revision> (e.g. git:HEAD~1)')
  .argument('[new]', 'dictionary folder, or git:<revision>', 'schemas/dictionary')
  .addHelpText(
    'after',
    '\nExamples:\n  npm run lienthong -- dictionary diff git:HEAD\n  npm run lienthong -- dictionary diff /tmp/old-dictionary schemas/dictionary',
  )
  .action((oldWhere: string, newWhere: string) => dictionary.diff(oldWhere, newWhere));
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
  .action(async (options: { port: number; host: string; schema: string; platformSchema: string }) =>
    dictionary.serve(options),
  );

program.addCommand(agreementCommand());
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
  .action(async (options: { agency: string; config: string }) => runAgent(options));

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
  .action(async (options: { dryRun: boolean; schema: string; sourcePartitions: number }) =>
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
  .action(async (options: { dryRun: boolean; schema: string; watch?: number }) => runAclSync(options));

program
  .command('coordinator')
  .description(
    'derive each active sharing agreement’s stream lt.share.<agreement> from the source topics (method (b))',
  )
  .option('--schema <name>', 'PostgreSQL schema of the agreements and the coordinator state', 'lt_platform')
  .action(async (options: { schema: string }) => runCoordinator(options));

program
  .command('ngdb')
  .description(
    'keep the National General Database: current state and full history of every dataset (method (c))',
  )
  .option('--schema <name>', 'PostgreSQL schema of the NGDB', 'lt_ngdb')
  .action(async (options: { schema: string }) => runNgdb(options));

try {
  await program.parseAsync();
} catch (error) {
  console.error(`\nlienthong: ${describeError(error)}`);
  process.exitCode = 1;
}
