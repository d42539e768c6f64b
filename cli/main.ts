#!/usr/bin/env -S npx tsx
import { Command, InvalidArgumentError } from 'commander';
import { describeError } from '../infra/errors.ts';
import { runBroker } from './commands/broker.ts';
import { runDemo } from './commands/demo.ts';
import { serveRegistry } from './commands/registry.ts';

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

const program = new Command()
  .name('lienthong')
  .description(
    'lienthong — the event-streaming Data Sharing and Coordination Platform (Decree 278/2025/ND-CP).\n\n' +
      'Services come from the environment: KAFKA_BROKERS (unset: a local broker is started), REDIS_URL\n' +
      '(default redis://127.0.0.1:6379), DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),\n' +
      'SCHEMA_REGISTRY_URL (unset: the platform serves its own), LIENTHONG_HOME (default ~/.cache/lienthong).',
  )
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
  .description('run Apache Kafka locally (KRaft, single node) for development');
broker
  .command('start')
  .description('fetch the Kafka jars if needed, start a broker, stop it on Ctrl-C')
  .option('--port <port>', 'client port', port, 9092)
  .option('--controller-port <port>', 'KRaft controller port', port, 9093)
  .option('--data-dir <dir>', 'broker storage (default $LIENTHONG_HOME/run/broker)')
  .option('--fresh', 'wipe the storage first', false)
  .action(async (options: { port: number; controllerPort: number; dataDir?: string; fresh: boolean }) =>
    runBroker(options),
  );

const registry = program
  .command('registry')
  .description('the Shared Data Dictionary’s Confluent-compatible schema registry');
registry
  .command('serve')
  .description('serve the registry REST API, stored in PostgreSQL')
  .option('--port <port>', 'HTTP port', port, 8081)
  .option('--host <host>', 'interface to bind', '127.0.0.1')
  .option('--schema <name>', 'PostgreSQL schema holding the registry', 'lt_registry')
  .action(async (options: { port: number; host: string; schema: string }) => serveRegistry(options));

try {
  await program.parseAsync();
} catch (error) {
  console.error(`\nlienthong: ${describeError(error)}`);
  process.exitCode = 1;
}
