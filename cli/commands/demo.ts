import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { NgdbSink } from '../../consumers/ngdb/index.ts';
import { startSubscription, type RunningSubscription } from '../../consumers/subscription/index.ts';
import { readEnv } from '../../infra/config/options.ts';
import { listen } from '../../infra/http/server.ts';
import { groupLag } from '../../infra/kafka/admin.ts';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../../infra/kafka/client.ts';
import { setScramPassword } from '../../infra/kafka/scram.ts';
import { newPassword, principals } from '../../infra/security/principals.ts';
import { syncTopics } from '../../platform/topics/plan.ts';
import { topics } from '../../infra/kafka/topics.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate, type MigrationSet } from '../../infra/postgres/migrate.ts';
import { createPool, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import { createRedis } from '../../infra/redis/client.ts';
import { ensureServices } from '../../infra/services.ts';
import type { AclGrant } from '../../infra/kafka/acl.ts';
import { desiredAcls, syncAcls } from '../../platform/access/plan.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { Coordinator } from '../../platform/coordinator/index.ts';
import { Publisher, VersionLedger, type Change } from '../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../producers/sample/enterprises.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import {
  createRegistryClient,
  registerDatasetSchemas,
  type SchemaRegistry,
} from '../../schemas/registry/client.ts';
import { registryAccess } from '../../schemas/registry/access.ts';
import { platformServerTls } from '../../infra/security/pki.ts';
import { sameSecret } from '../../infra/http/principal-auth.ts';
import { createRegistryServer } from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';
import { printTable } from '../table.ts';
import { sampleAgreements } from './agreement.ts';

export interface DemoOptions {
  citizens: number;
  batch: number;
}

/** The agreements the demo runs (DOMAIN.md's sample table, land parcels aside: no parcel data is published). */
const DEMO_AGREEMENTS = [
  'ubnd-hn-citizen',
  'ubnd-hcm-citizen',
  'bhxh-citizen',
  'btc-citizen',
  'bca-enterprise',
];

/**
 * The platform end to end on real services: BCA publishes citizens (creates, moves between provinces,
 * deaths, ID corrections) and BTC publishes enterprises through their Agent Nodes; the coordinator derives
 * each approved agreement's stream; each subscriber's Agent Node keeps its copy; the NGDB keeps everything
 * with its history. The summary says what went where.
 */
export async function runDemo({ citizens: count, batch }: DemoOptions): Promise<void> {
  const env = readEnv();
  // The console shows progress and the summary; the structured log goes to a file.
  const logFile = join(env.LIENTHONG_HOME, 'run', 'demo.log');
  const log = createLogger(env.LOG_LEVEL, logFile);
  const started = Date.now();
  const step = (text: string): void => console.log(`\n▸ ${text}`);
  const cleanups: (() => Promise<unknown>)[] = [];

  /** A demo database schema, emptied first: the demo's broker starts empty, so does its state. */
  const freshSchema = async (schema: string, set?: MigrationSet): Promise<Pool> => {
    const pool = await createPool({ url: env.DATABASE_URL, schema });
    cleanups.unshift(() => pool.end());
    await pool.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE; CREATE SCHEMA ${quoteIdent(schema)}`);
    if (set) await migrate(pool, set);
    return pool;
  };

  step('starting services (Kafka, PostgreSQL, Redis)');
  const services = await ensureServices({ env, log, brokerDir: 'demo' });
  cleanups.push(() => services.stop());
  try {
    console.log(
      `  kafka ${services.brokers.join(',')}${services.localBroker ? ` (local broker, up in ${((Date.now() - started) / 1000).toFixed(1)} s; log ${services.localBroker.logFile})` : ''}`,
    );
    if (services.admin)
      console.log(
        '  security on: TLS + SCRAM-SHA-512 on the broker, nothing allowed unless an ACL grants it',
      );
    else console.log('  INSECURE: the broker runs in plaintext (LIENTHONG_INSECURE=1 or KAFKA_BROKERS)');
    const kafka = createKafka({
      brokers: services.brokers,
      clientId: 'lienthong-demo',
      log,
      ...(services.admin ? { security: services.admin } : {}),
    });
    // each principal's password for this demo's broker and registry only; never written anywhere
    const passwords = new Map<string, string>();
    const passwordOf = (principal: string): string => {
      let password = passwords.get(principal);
      if (!password) {
        password = newPassword();
        if (services.admin)
          setScramPassword(
            { home: env.LIENTHONG_HOME, brokers: services.brokers, admin: services.admin, log },
            principal,
            password,
          );
        passwords.set(principal, password);
      }
      return password;
    };
    const registryPool = await freshSchema('lt_demo_registry', 'registry');
    let registryUrl = env.SCHEMA_REGISTRY_URL;
    if (!registryUrl) {
      // served like `lienthong dictionary serve`: TLS from the platform CA, every caller a principal
      const server = createRegistryServer(
        new RegistryStore(registryPool),
        log,
        services.admin
          ? {
              access: registryAccess((principal, password) => sameSecret(passwords.get(principal), password)),
              tls: platformServerTls(env.LIENTHONG_HOME, 'lt-registry', '127.0.0.1'),
            }
          : {},
      );
      registryUrl = await listen(server);
      cleanups.unshift(() => server.close());
    }
    console.log(`  schema registry ${registryUrl}${services.admin ? ' (TLS, a principal per caller)' : ''}`);
    const url = registryUrl;
    const registryAs = (principal: string): SchemaRegistry =>
      createRegistryClient(
        services.admin
          ? { url, auth: { username: principal, password: passwordOf(principal) }, ca: services.admin.ca }
          : { url },
      );
    const redis = await createRedis({
      url: env.REDIS_URL,
      cluster: env.REDIS_CLUSTER,
      keyPrefix: `lt:demo:${Date.now()}:`,
    });
    cleanups.unshift(async () => redis.disconnect());

    step('the Shared Data Dictionary and the sharing agreements');
    const dictionary = loadDictionary();
    await syncTopics(kafka, {
      dictionary,
      agreements: [],
      sourcePartitions: 3,
      deadLetterRetentionDays: env.LIENTHONG_DLQ_RETENTION_DAYS,
    });
    // the dictionary publisher registers every dataset's schemas; publishers only look them up
    const publisherOfDictionary = registryAs(principals.registry);
    for (const dataset of dictionary.datasets.values())
      await registerDatasetSchemas(publisherOfDictionary, dataset);
    console.log(
      `  the dictionary publisher (${principals.registry}) registered ${dictionary.datasets.size} datasets' schemas`,
    );
    const platformPool = await freshSchema('lt_demo_platform', 'platform');
    const agreements = new AgreementStore(platformPool, dictionary);
    for (const input of sampleAgreements(dictionary).filter((a) => DEMO_AGREEMENTS.includes(String(a.id)))) {
      await agreements.create(input, 'demo');
      await agreements.approve(String(input.id), 'demo');
    }
    const approved = await agreements.list({ status: 'approved' });
    console.log(
      `  ${dictionary.datasets.size} datasets; ${approved.length} agreements approved: ${approved.map((a) => a.id).join(', ')}`,
    );
    if (services.admin) {
      // the broker's ACLs follow the dictionary and the agreements (lienthong acl sync does the same)
      const { changes } = await syncAcls(kafka, { dictionary, agreements: approved });
      console.log(`  ${changes.length} ACLs granted on the broker; who may read and write what:`);
      printTable(
        ['principal', 'may', 'topics'],
        whoMayWhat(desiredAcls({ dictionary, agreements: approved })),
      );
      console.log('  each service below connects as its own principal, under nothing but these ACLs');
    }
    // every service below connects as its own principal, under nothing but those ACLs
    const clients = new Map<string, Kafka>();
    const kafkaAs = (principal: string): Kafka => {
      const admin = services.admin;
      if (!admin) return kafka;
      let client = clients.get(principal);
      if (!client) {
        client = createKafka({
          brokers: services.brokers,
          clientId: `lienthong-demo-${principal}`,
          log,
          security: { ca: admin.ca, username: principal, password: passwordOf(principal) },
        });
        clients.set(principal, client);
      }
      return client;
    };

    step('platform services: coordinator (method b) and NGDB sink (method c)');
    const coordinator = new Coordinator({
      kafka: kafkaAs(principals.coordinator),
      registry: registryAs(principals.coordinator),
      dictionary,
      pool: platformPool,
      loadAgreements: () => agreements.list(),
      log,
    });
    await coordinator.start();
    cleanups.unshift(() => coordinator.stop());
    const ngdbPool = await freshSchema('lt_demo_ngdb');
    const ngdb = new NgdbSink({
      kafka: kafkaAs(principals.ngdb),
      registry: registryAs(principals.ngdb),
      pool: ngdbPool,
      dictionary,
      redis,
      log,
    });
    await ngdb.start();
    cleanups.unshift(() => ngdb.stop());

    step('subscribers’ Agent Nodes start their copies');
    const subscriptions: RunningSubscription[] = [];
    for (const agreement of approved) {
      await freshSchema(`lt_share_${agreement.id.replace(/-/g, '_')}`);
      const subscription = await startSubscription(
        { agreement: agreement.id, dataset: agreement.dataset },
        {
          kafka: kafkaAs(principals.agency(agreement.subscriber)),
          registry: registryAs(principals.agency(agreement.subscriber)),
          dictionary,
          databaseUrl: env.DATABASE_URL,
          agency: agreement.subscriber,
          redis,
          log,
        },
      );
      subscriptions.push(subscription);
      cleanups.unshift(() => subscription.stop());
    }

    step(
      `BCA publishes ${count} citizens and their changes; BTC publishes ${Math.ceil(count / 10)} enterprises`,
    );
    const publishers = new Map<string, Publisher>();
    for (const agency of ['BCA', 'BTC']) {
      const agentPool = await freshSchema(`lt_demo_agent_${agency.toLowerCase()}`, 'agent');
      const publisher = new Publisher({
        kafka: kafkaAs(principals.agency(agency)),
        registry: registryAs(principals.agency(agency)),
        dictionary,
        agency,
        ledger: new VersionLedger(agentPool),
        log,
      });
      await publisher.connect();
      cleanups.unshift(() => publisher.close());
      publishers.set(agency, publisher);
    }
    const random = seededRandom(278);
    const citizens = sampleCitizens(count);
    const movers = citizens.slice(0, Math.floor(count * 0.15));
    const deaths = citizens.slice(Math.floor(count * 0.15), Math.floor(count * 0.17));
    const corrections = citizens.slice(Math.floor(count * 0.17), Math.floor(count * 0.18));
    const citizenChanges: Change[] = [
      ...citizens.map((after): Change => ({ op: 'CREATE', after, version: 1 })),
      ...movers.map((citizen): Change => ({ op: 'UPDATE', after: relocate(citizen, random), version: 2 })),
      ...deaths.map((citizen): Change => ({
        op: 'UPDATE',
        after: { ...citizen, death_date: '2026-10-01' },
        version: 2,
      })),
      // a wrong personal ID is corrected: DELETE the wrong key, CREATE the right one
      ...corrections.flatMap((citizen): Change[] => {
        const right = String(citizen.personal_id).replace(/\d{6}$/, (serial) =>
          String((Number(serial) + 1) % 1e6).padStart(6, '0'),
        );
        return [
          { op: 'DELETE', key: String(citizen.personal_id), version: 2 },
          { op: 'CREATE', after: { ...citizen, personal_id: right }, version: 1 },
        ];
      }),
    ];
    const enterpriseChanges: Change[] = sampleEnterprises(Math.ceil(count / 10)).map((after) => ({
      op: 'CREATE',
      after,
      version: 1,
    }));
    const plan: [string, string, Change[]][] = [
      ['BCA', 'population.citizen', citizenChanges],
      ['BTC', 'business.enterprise', enterpriseChanges],
    ];
    const total = citizenChanges.length + enterpriseChanges.length;
    const bar = new SingleBar(
      { format: '  publish |{bar}| {value}/{total} events | {rate}/s', hideCursor: true },
      Presets.shades_classic,
    );
    const publishStart = Date.now();
    bar.start(total, 0, { rate: 0 });
    let done = 0;
    for (const [agency, datasetId, changes] of plan) {
      for (let i = 0; i < changes.length; i += batch) {
        const result = await publishers.get(agency)!.publishBatch(datasetId, changes.slice(i, i + batch));
        const refused = result.outcomes.find((outcome) => outcome.status === 'rejected');
        if (refused)
          throw new Error(
            `${agency}'s Agent Node refused a sample record: ${refused.code}: ${refused.message}`,
          );
        done += result.accepted;
        bar.update(done, { rate: Math.round(done / ((Date.now() - publishStart) / 1000)) });
      }
    }
    bar.stop();
    const publishMs = Date.now() - publishStart;

    step('waiting until the coordinator, the NGDB and every subscriber have committed everything');
    const jobs: [string, string][] = [
      ...plan.map(([, datasetId]): [string, string] => [
        coordinator['options'].groupId ?? 'lt.coordinator',
        topics.source(datasetId),
      ]),
      ...plan.map(([, datasetId]): [string, string] => [ngdb.groupId, topics.source(datasetId)]),
    ];
    const deadline = Date.now() + 180_000;
    const lagOf = async (pairs: [string, string][]): Promise<number> =>
      (await Promise.all(pairs.map(([group, topic]) => groupLag(kafka, group, topic)))).reduce(
        (a, b) => a + b,
        0,
      );
    while ((await lagOf(jobs)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    // the coordinator has produced everything now; then every share stream must be drained
    const shareJobs = subscriptions.map((s): [string, string] => [
      s.sink['options'].groupId,
      topics.share(s.spec.agreement),
    ]);
    while ((await lagOf(shareJobs)) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const remaining = (await lagOf(jobs)) + (await lagOf(shareJobs));
    if (remaining > 0)
      throw new Error(`not caught up within 180 s (${remaining} records left); see ${logFile}`);
    const endToEndMs = Date.now() - publishStart;

    step('summary: what went where');
    const published = new Map<string, number>();
    for (const [agency, datasetId, changes] of plan) {
      for (const change of changes)
        published.set(
          `${agency}|${datasetId}|${change.op}`,
          (published.get(`${agency}|${datasetId}|${change.op}`) ?? 0) + 1,
        );
    }
    printTable(
      ['source agency', 'dataset', 'op', 'events'],
      [...published].map(([key, events]) => [...key.split('|'), String(events)]),
    );
    const rows: string[][] = [];
    for (const subscription of subscriptions) {
      const agreement = approved.find((a) => a.id === subscription.spec.agreement)!;
      const { rows: counts } = await subscription.pool.query<{ current: string; deleted: string }>(
        `SELECT count(*) FILTER (WHERE NOT _deleted) AS current, count(*) FILTER (WHERE _deleted) AS deleted FROM ${quoteIdent(subscription.sink.table.name)}`,
      );
      rows.push([
        agreement.subscriber,
        agreement.id,
        agreement.filterText,
        String(subscription.sink.table.dataset.fields.length),
        counts[0]!.current,
        counts[0]!.deleted,
      ]);
    }
    printTable(
      ['method (b): subscriber', 'agreement', 'row filter', 'fields', 'rows', 'left (deleted)'],
      rows,
    );
    const ngdbRows: string[][] = [];
    for (const [, datasetId] of plan) {
      const table = datasetId.replace(/[.-]/g, '_');
      const { rows: counts } = await ngdbPool.query<{ current: string; history: string }>(
        `SELECT (SELECT count(*) FROM ${quoteIdent(table)} WHERE NOT _deleted) AS current, (SELECT count(*) FROM ${quoteIdent(`${table}_history`)}) AS history`,
      );
      ngdbRows.push(['TTDLQG (NGDB)', datasetId, counts[0]!.current, counts[0]!.history]);
    }
    printTable(
      ['method (c): National General Database', 'dataset', 'current rows', 'history rows (every version)'],
      ngdbRows,
    );
    printTable(
      ['figure', 'value'],
      [
        ['events published', String(total)],
        ['publish rate', `${Math.round(total / (publishMs / 1000))} events/s`],
        ['published → every copy committed', `${(endToEndMs / 1000).toFixed(1)} s`],
        [
          'coordinator: source events read / shared / rejected',
          `${coordinator.stats.read} / ${coordinator.stats.shared} / ${coordinator.stats.rejected}`,
        ],
        ['demo total', `${((Date.now() - started) / 1000).toFixed(1)} s`],
        ['structured log', logFile],
      ],
    );
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

/** READ and WRITE grants on topics, one row per principal and operation: the demo's picture of who may what. */
function whoMayWhat(acls: AclGrant[]): string[][] {
  const rows = new Map<string, string[]>();
  for (const acl of acls) {
    if (acl.resource !== 'TOPIC' || (acl.operation !== 'READ' && acl.operation !== 'WRITE')) continue;
    const key = `${acl.principal.replace(/^User:/, '')}\t${acl.operation.toLowerCase()}`;
    rows.set(key, [...(rows.get(key) ?? []), acl.pattern === 'PREFIXED' ? `${acl.name}*` : acl.name]);
  }
  return [...rows]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, names]) => [...key.split('\t'), names.join(', ')]);
}
