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
import { ensurePlatformCa, ensureServerCertificate } from '../security/pki.ts';
import { ensureCredential, principals } from '../security/principals.ts';
import type { KafkaSecurity } from './client.ts';

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
  /**
   * TLS and SCRAM-SHA-512 on the client listener, mutual TLS between nodes and controllers, and the standard
   * authorizer with nothing allowed that is not granted (docs/security.md). The CA, the broker certificate and
   * the `lt-admin` credential are made under `<home>/security/` on first use.
   */
  secure?: boolean;
  log: Logger;
}

export interface LocalBroker {
  brokers: string[];
  /** With `secure`: how the super user `lt-admin` connects (operators' tools; tests). */
  admin?: KafkaSecurity;
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

/** One node of a local KRaft cluster: broker and controller in one process. */
interface NodeSpec {
  nodeId: number;
  port: number;
  controllerPort: number;
  dataDir: string;
}

/**
 * The properties of one node. `size` nodes form the controller quorum; on three or more, internal topics get
 * replication factor 3 and `min.insync.replicas` 2, as a production cluster would (DESIGN.md §6).
 */
/** The broker's own certificate's common name: its principal on the controller listener (`User:CN=lt-broker`). */
const BROKER_CN = 'lt-broker';

/** What a secure node needs: its keystore, the CA, and the super user's password for inter-broker SCRAM. */
interface NodeSecurity {
  keystoreFile: string;
  caFile: string;
  admin: KafkaSecurity;
}

/**
 * Listeners of a node: the client listener, and the controller listener. Secure: clients authenticate with
 * SCRAM-SHA-512 over TLS (brokers among themselves as `lt-admin`); nodes reach controllers over mutual TLS with
 * the broker certificate; the standard authorizer refuses whatever no ACL grants; super users are `lt-admin` and
 * the broker certificate. Re-authentication every minute ends a revoked principal's sessions.
 */
function listenerProperties(spec: NodeSpec, nodes: readonly NodeSpec[], security?: NodeSecurity): string[] {
  const voters = `controller.quorum.voters=${nodes.map((node) => `${node.nodeId}@127.0.0.1:${node.controllerPort}`).join(',')}`;
  if (!security)
    return [
      voters,
      `listeners=PLAINTEXT://127.0.0.1:${spec.port},CONTROLLER://127.0.0.1:${spec.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${spec.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    ];
  const { username, password } = security.admin;
  const jaas = `org.apache.kafka.common.security.scram.ScramLoginModule required username="${username}" password="${password}";`;
  return [
    voters,
    `listeners=SASL_SSL://127.0.0.1:${spec.port},CONTROLLER://127.0.0.1:${spec.controllerPort}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${spec.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL',
    'sasl.enabled.mechanisms=SCRAM-SHA-512',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas}`,
    'listener.name.controller.ssl.client.auth=required',
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${security.keystoreFile}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${security.caFile}`,
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found=false',
    `super.users=User:${username};User:CN=${BROKER_CN}`,
    'connections.max.reauth.ms=60000',
  ];
}

function nodeProperties(
  spec: NodeSpec,
  nodes: readonly NodeSpec[],
  partitions: number,
  security?: NodeSecurity,
): string {
  const replicas = Math.min(3, nodes.length);
  const minInsync = replicas >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${spec.nodeId}`,
    ...listenerProperties(spec, nodes, security),
    `log.dirs=${join(spec.dataDir, 'segments')}`,
    `num.partitions=${partitions}`,
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minInsync}`,
    'auto.create.topics.enable=false',
    `offsets.topic.replication.factor=${replicas}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minInsync}`,
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    'message.max.bytes=2097152',
    // a subscriber may stay offline for months: its committed position must outlive that (Kafka's default
    // forgets a group's offsets 7 days after it went empty)
    'offsets.retention.minutes=5256000',
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

export interface LocalClusterOptions extends Omit<LocalBrokerOptions, 'port' | 'controllerPort'> {
  /** How many nodes (each broker and controller). 3 makes a cluster that survives losing one. */
  size: number;
}

/** One running node of a local cluster; it can be killed and started again on the same ports and storage. */
export interface LocalNode {
  nodeId: number;
  broker: string;
  logFile: string;
  readonly pid: number;
  readonly running: boolean;
  /** Stops it with `signal` (SIGKILL: a crash) and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again after a kill or stop, and waits until it serves clients. */
  start(): Promise<void>;
}

export interface LocalCluster {
  brokers: string[];
  /** With `secure`: how the super user `lt-admin` connects (operators' tools; tests). */
  admin?: KafkaSecurity;
  nodes: LocalNode[];
  stop(): Promise<void>;
}

function jvmArgs(libs: string, log4jFile: string, heap: string): string[] {
  return [
    '-Xms256m',
    `-Xmx${heap}`,
    '-XX:+UseG1GC',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    '-cp',
    `${libs}/*`,
  ];
}

/** Formats a node's storage once (a restart keeps its data): every node of a cluster with one cluster id. */
function formatStorage(
  jvm: string[],
  spec: NodeSpec,
  propertiesFile: string,
  clusterId: string,
  admin?: KafkaSecurity,
): void {
  if (existsSync(join(spec.dataDir, 'segments', 'meta.properties'))) return;
  // The super user's SCRAM credential is written into the metadata at format time (KRaft's only way to have a
  // first user); the format tool takes it as an argument only, for the second it runs, before any client can
  // connect. Every later credential goes through a file (infra/kafka/scram.ts).
  const scram = admin
    ? ['--add-scram', `SCRAM-SHA-512=[name=${admin.username},password=${admin.password}]`]
    : [];
  const formatted = spawnSync(
    'java',
    // `--cluster-id=…` in one argument: a base64url id may begin with "-", which a separate argument would
    // make look like an option
    [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      `--cluster-id=${clusterId}`,
      '-c',
      propertiesFile,
      ...scram,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (formatted.status !== 0) {
    const output = tail(`${formatted.stdout}\n${formatted.stderr}`, 20);
    throw new LtError('LT_KAFKA_START_FAILED', `formatting the broker storage failed:\n${output}`, {
      details: { dataDir: spec.dataDir, output },
      hint: `remove ${spec.dataDir} and try again`,
    });
  }
}

/** A node process: spawned by `start`, which resolves once the broker serves clients. */
function nodeHandle(spec: NodeSpec, jvm: string[], propertiesFile: string, log: Logger): LocalNode {
  const logFile = join(spec.dataDir, 'broker.log');
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let exitCode: number | null = null;

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (!child || exitCode !== null) return;
    const running = child;
    running.kill(signal);
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const start = async (): Promise<void> => {
    if (child && exitCode === null) return;
    const out = openSync(logFile, 'w');
    const spawned = spawn('java', [...jvm, 'kafka.Kafka', propertiesFile], { stdio: ['ignore', out, out] });
    closeSync(out);
    child = spawned;
    exitCode = null;
    exited = new Promise<void>((resolve) =>
      spawned.once('exit', (code) => {
        exitCode = code ?? -1;
        resolve();
      }),
    );
    log.info(
      { broker: `127.0.0.1:${spec.port}`, node: spec.nodeId, pid: spawned.pid },
      'Kafka node starting',
    );
    const started = Date.now();
    while (!readTail(logFile, 400).includes('Kafka Server started')) {
      if (exitCode !== null) {
        throw new LtError(
          'LT_KAFKA_START_FAILED',
          `the local Kafka broker exited with code ${exitCode} while starting`,
          {
            details: { logFile, logTail: readTail(logFile) },
            hint: `read ${logFile}; the last lines were:\n${readTail(logFile, 15)}`,
          },
        );
      }
      if (Date.now() - started > START_TIMEOUT_MS) {
        await kill();
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
    log.info({ broker: `127.0.0.1:${spec.port}`, ms: Date.now() - started }, 'Kafka node started');
  };

  return {
    nodeId: spec.nodeId,
    broker: `127.0.0.1:${spec.port}`,
    logFile,
    get pid() {
      return child?.pid ?? -1;
    },
    get running() {
      return child !== null && exitCode === null;
    },
    kill,
    start,
  };
}

/**
 * Starts a local KRaft cluster of `size` nodes (each broker and controller) as child processes, from the
 * same jars as the single broker, and resolves once every node serves clients. Node `n` keeps its data in
 * `<dataDir>/node-<n>` and its log in `<dataDir>/node-<n>/broker.log`.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const specs: NodeSpec[] = [];
  for (let nodeId = 1; nodeId <= options.size; nodeId++)
    specs.push({
      nodeId,
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir: join(options.dataDir, `node-${nodeId}`),
    });
  if (options.fresh) rmSync(options.dataDir, { recursive: true, force: true });
  return startNodes(options, specs);
}

async function startNodes(options: LocalBrokerOptions, specs: NodeSpec[]): Promise<LocalCluster> {
  const { home, log } = options;
  const libs = ensureKafkaJars(home, log);
  checkJavaAndMaven();
  for (const spec of specs) {
    await assertPortFree(spec.port, 'client listener');
    await assertPortFree(spec.controllerPort, 'controller listener');
  }
  const clusterId = randomBytes(16).toString('base64url');
  const security = options.secure ? nodeSecurity(home) : undefined;
  const nodes = specs.map((spec) => {
    mkdirSync(spec.dataDir, { recursive: true });
    const propertiesFile = join(spec.dataDir, 'server.properties');
    const log4jFile = join(spec.dataDir, 'log4j2.properties');
    writeFileSync(propertiesFile, nodeProperties(spec, specs, options.partitions ?? 3, security), {
      mode: 0o600, // it holds the super user's password when secure
    });
    writeFileSync(log4jFile, LOG4J2);
    const jvm = jvmArgs(libs, log4jFile, options.heap ?? (specs.length > 1 ? '512m' : '1g'));
    formatStorage(jvm, spec, propertiesFile, clusterId, security?.admin);
    return nodeHandle(spec, jvm, propertiesFile, log);
  });
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.kill()));
  };
  // all at once: a node of a quorum only reports started once a majority of controllers is up
  const started = await Promise.allSettled(nodes.map((node) => node.start()));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return {
    brokers: nodes.map((node) => node.broker),
    nodes,
    stop,
    ...(security ? { admin: security.admin } : {}),
  };
}

/** The CA, the broker certificate and the super user's credential, made under `<home>/security/` if missing. */
function nodeSecurity(home: string): NodeSecurity {
  const ca = ensurePlatformCa(home);
  const certificate = ensureServerCertificate(ca, home, BROKER_CN, ['127.0.0.1', 'localhost']);
  const admin = ensureCredential(home, principals.admin);
  return {
    keystoreFile: certificate.keystoreFile,
    caFile: ca.certFile,
    admin: { ca: ca.certPem, username: admin.principal, password: admin.password },
  };
}

/**
 * Starts a single-node KRaft broker as a child process and resolves once it accepts clients.
 * The broker's own log goes to `<dataDir>/broker.log`; on failure its tail is part of the error.
 */
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  const port = options.port || (await freePort());
  const controllerPort = options.controllerPort || (await freePort());
  if (options.fresh) rmSync(options.dataDir, { recursive: true, force: true });
  const cluster = await startNodes(options, [{ nodeId: 1, port, controllerPort, dataDir: options.dataDir }]);
  const node = cluster.nodes[0]!;
  return {
    brokers: cluster.brokers,
    logFile: node.logFile,
    pid: node.pid,
    stop: cluster.stop,
    ...(cluster.admin ? { admin: cluster.admin } : {}),
  };
}
