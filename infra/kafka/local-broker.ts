import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  closeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';

/** The Apache Kafka release the local broker runs (KRaft, combined controller + broker). */
export const KAFKA_VERSION = '4.1.1';

const POM = join(dirname(fileURLToPath(import.meta.url)), 'pom.xml');
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;

export interface LocalBrokerOptions {
  /** Cache root (LIENTHONG_HOME): jars go to `<home>/kafka-<version>/libs`. */
  home: string;
  /** Where the broker keeps its log segments and its own log file. Wiped first when `fresh`. */
  dataDir: string;
  /** Client port; 0 picks a free one. */
  port?: number;
  /** Controller port; 0 picks a free one. */
  controllerPort?: number;
  /** Start from empty storage (tests, demo). */
  fresh?: boolean;
  /** Default partitions for auto-created topics. */
  partitions?: number;
  /** JVM heap, e.g. "512m". */
  heap?: string;
  log: Logger;
}

export interface LocalBroker {
  brokers: string[];
  logFile: string;
  pid: number;
  stop(): Promise<void>;
}

/** Fails with one clear message when Java or Maven is missing or too old. */
export function checkJavaAndMaven(): void {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error || java.status !== 0) {
    throw new LtError('LT_JAVA_MISSING', 'java was not found on PATH', {
      hint: 'install a Java 17+ runtime (Debian: apt-get install -y openjdk-17-jre-headless) or set KAFKA_BROKERS to an existing cluster',
    });
  }
  const major = Number(/version "(\d+)/.exec(java.stderr)?.[1] ?? 0);
  if (major < 17) {
    throw new LtError(
      'LT_JAVA_MISSING',
      `Kafka ${KAFKA_VERSION} needs Java 17 or newer; found Java ${major || 'unknown'}`,
      {
        hint: 'install Java 17+ and put it first on PATH (or set JAVA_HOME)',
      },
    );
  }
}

/** Downloads the broker jars with Maven once; later calls find them in the cache. */
export function ensureKafkaJars(home: string, log: Logger): string {
  const libs = join(home, `kafka-${KAFKA_VERSION}`, 'libs');
  if (existsSync(join(libs, '.complete'))) return libs;
  checkJavaAndMaven();
  const mvn = spawnSync('mvn', ['--version'], { encoding: 'utf8' });
  if (mvn.error || mvn.status !== 0) {
    throw new LtError('LT_MAVEN_MISSING', 'mvn was not found on PATH', {
      hint: 'install Maven (Debian: apt-get install -y maven) or set KAFKA_BROKERS to an existing cluster',
    });
  }
  log.info(
    { libs, version: KAFKA_VERSION },
    'fetching Kafka broker jars from Maven Central (first run only)',
  );
  const staging = `${libs}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const fetched = spawnSync(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      POM,
      `-Dkafka.version=${KAFKA_VERSION}`,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${staging}`,
    ],
    { encoding: 'utf8', timeout: 15 * 60_000 },
  );
  if (fetched.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new LtError(
      'LT_KAFKA_JARS_FETCH_FAILED',
      `mvn dependency:copy-dependencies failed (exit ${fetched.status})`,
      {
        details: { output: tail(`${fetched.stdout}\n${fetched.stderr}`, 20) },
        hint: 'check that Maven Central is reachable (mvn -X shows the proxy in use), then run again',
      },
    );
  }
  writeFileSync(join(staging, '.complete'), `${KAFKA_VERSION}\n`);
  rmSync(libs, { recursive: true, force: true });
  mkdirSync(dirname(libs), { recursive: true });
  renameSync(staging, libs);
  return libs;
}

/** Asks the OS for a free port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function assertPortFree(port: number, role: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', () =>
      reject(
        new LtError('LT_PORT_TAKEN', `port ${port} (Kafka ${role}) is already in use on 127.0.0.1`, {
          details: { port, role },
          hint: `stop whatever listens there (ss -ltnp 'sport = :${port}'), choose another port, or set KAFKA_BROKERS to use a broker that is already running`,
        }),
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

function brokerProperties(dataDir: string, port: number, controllerPort: number, partitions: number): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(dataDir, 'segments')}`,
    `num.partitions=${partitions}`,
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    'message.max.bytes=2097152',
    '',
  ].join('\n');
}

const LOG4J2 = [
  'rootLogger.level=INFO',
  'rootLogger.appenderRef.stdout.ref=STDOUT',
  'appender.stdout.type=Console',
  'appender.stdout.name=STDOUT',
  'appender.stdout.layout.type=PatternLayout',
  'appender.stdout.layout.pattern=[%d] %p %m (%c)%n',
  'logger.kafka.name=kafka',
  'logger.kafka.level=INFO',
  'logger.state.name=state.change.logger',
  'logger.state.level=WARN',
  '',
].join('\n');

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function readTail(file: string, lines = 30): string {
  try {
    return tail(readFileSync(file, 'utf8'), lines);
  } catch {
    return '(no broker log was written)';
  }
}

/**
 * Starts a single-node KRaft broker as a child process and resolves once it accepts clients.
 * The broker's own log goes to `<dataDir>/broker.log`; on failure its tail is part of the error.
 */
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  const { home, dataDir, log } = options;
  const libs = ensureKafkaJars(home, log);
  checkJavaAndMaven();
  const port = options.port || (await freePort());
  const controllerPort = options.controllerPort || (await freePort());
  await assertPortFree(port, 'client listener');
  await assertPortFree(controllerPort, 'controller listener');

  if (options.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const propertiesFile = join(dataDir, 'server.properties');
  const log4jFile = join(dataDir, 'log4j2.properties');
  const logFile = join(dataDir, 'broker.log');
  writeFileSync(propertiesFile, brokerProperties(dataDir, port, controllerPort, options.partitions ?? 3));
  writeFileSync(log4jFile, LOG4J2);
  const classpath = `${libs}/*`;
  const jvm = [
    `-Xms256m`,
    `-Xmx${options.heap ?? '1g'}`,
    '-XX:+UseG1GC',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    '-cp',
    classpath,
  ];

  if (!existsSync(join(dataDir, 'segments', 'meta.properties'))) {
    const clusterId = randomBytes(16).toString('base64url');
    const formatted = spawnSync(
      'java',
      // `--cluster-id=…` in one argument: a base64url id may begin with "-", which a separate argument would
      // make look like an option
      [...jvm, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', propertiesFile],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    if (formatted.status !== 0) {
      const output = tail(`${formatted.stdout}\n${formatted.stderr}`, 20);
      throw new LtError('LT_KAFKA_START_FAILED', `formatting the broker storage failed:\n${output}`, {
        details: { dataDir, output },
        hint: `remove ${dataDir} and try again`,
      });
    }
  }

  const out = openSync(logFile, 'w');
  const child: ChildProcess = spawn('java', [...jvm, 'kafka.Kafka', propertiesFile], {
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const brokers = [`127.0.0.1:${port}`];
  log.info({ brokers, dataDir, pid: child.pid }, 'local Kafka broker starting');

  let exited: number | null = null;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code ?? -1;
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (exited !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exitPromise;
    clearTimeout(timer);
  };

  const started = Date.now();
  while (!readTail(logFile, 400).includes('Kafka Server started')) {
    if (exited !== null) {
      throw new LtError(
        'LT_KAFKA_START_FAILED',
        `the local Kafka broker exited with code ${exited} while starting`,
        {
          details: { logFile, logTail: readTail(logFile) },
          hint: `read ${logFile}; the last lines were:\n${readTail(logFile, 15)}`,
        },
      );
    }
    if (Date.now() - started > START_TIMEOUT_MS) {
      await stop();
      throw new LtError(
        'LT_KAFKA_START_FAILED',
        `the local Kafka broker did not start within ${START_TIMEOUT_MS / 1000}s`,
        {
          details: { logFile, logTail: readTail(logFile) },
          hint: `read ${logFile}; the last lines were:\n${readTail(logFile, 15)}`,
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  log.info({ brokers, ms: Date.now() - started }, 'local Kafka broker started');
  return { brokers, logFile, pid: child.pid ?? -1, stop };
}
