import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../../consumers/ngdb/index.ts';
import { startSubscription } from '../../../consumers/subscription/index.ts';
import { groupLag } from '../../../infra/kafka/admin.ts';
import { createKafka } from '../../../infra/kafka/client.ts';
import { startLocalBroker, type LocalBroker } from '../../../infra/kafka/local-broker.ts';
import { setScramPassword } from '../../../infra/kafka/scram.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { newPassword, principals } from '../../../infra/security/principals.ts';
import { syncAcls } from '../../../platform/access/plan.ts';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import { Coordinator } from '../../../platform/coordinator/index.ts';
import { syncTopics } from '../../../platform/topics/plan.ts';
import { Publisher, VersionLedger } from '../../../producers/publisher/index.ts';
import { SAMPLE_RESIDENCES, sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import {
  env,
  log,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

const HANOI: readonly string[] = SAMPLE_RESIDENCES.find((residence) => residence.province === '01')!.communes;

/**
 * The whole pipeline with every service as its own principal under the ACLs `acl sync` derives — nothing as the
 * super user but the set-up: proves the grants are enough for the platform to work, not only that they refuse.
 */
describe('every service as its own principal, under the derived ACLs only', () => {
  const stops: (() => Promise<unknown>)[] = [];
  let broker: LocalBroker;
  let dataDir: string;
  afterAll(async () => {
    for (const stop of stops) await stop().catch(() => undefined);
    await broker?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('publishes as BCA, derives as the coordinator, stores as the NGDB and copies as UBND-HN', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'lt-least-privilege-'));
    broker = await startLocalBroker({ home: env.LIENTHONG_HOME, dataDir, secure: true, log });
    const admin = broker.admin!;
    const as = (principal: string): Kafka => {
      const password = newPassword();
      setScramPassword(
        { home: env.LIENTHONG_HOME, brokers: broker.brokers, admin, log },
        principal,
        password,
      );
      return createKafka({
        brokers: broker.brokers,
        clientId: principal,
        log,
        security: { ca: admin.ca, username: principal, password },
      });
    };
    const root = createKafka({ brokers: broker.brokers, clientId: 'set-up', log, security: admin });
    const dictionary = loadDictionary();
    const dataset = 'population.citizen';
    const registry = await testRegistry();
    const redis = await testRedis();
    const { pool: platformPool } = await testPool();
    await migrate(platformPool, 'platform');
    const agreements = new AgreementStore(platformPool, dictionary);
    const agreementId = uniqueName('hn-');
    await agreements.create(
      {
        id: agreementId,
        subscriber: 'UBND-HN',
        dataset,
        fields: ['personal_id', 'full_name', 'commune_code'],
        filter: `commune_code in [${HANOI.map((code) => `"${code}"`).join(', ')}]`,
        purpose: 'local administrative procedures',
        legalBasis: 'Decree 278/2025/ND-CP, method (b)',
      },
      'test',
    );
    await agreements.approve(agreementId, 'test');
    // the operator's set-up, as the super user: topics and ACLs from the dictionary and the agreements
    await syncTopics(root, { dictionary, agreements: await agreements.list(), sourcePartitions: 2 });
    await syncAcls(root, { dictionary, agreements: await agreements.list() });

    const coordinatorKafka = as(principals.coordinator);
    const coordinator = new Coordinator({
      kafka: coordinatorKafka,
      registry: registry.client,
      dictionary,
      pool: platformPool,
      loadAgreements: () => agreements.list(),
      refreshMs: 300,
      log,
    });
    await coordinator.start();
    stops.unshift(() => coordinator.stop());
    const { pool: ngdbPool } = await testPool();
    const ngdb = new NgdbSink({
      kafka: as(principals.ngdb),
      registry: registry.client,
      pool: ngdbPool,
      dictionary: { ...dictionary, datasets: new Map([[dataset, dictionary.datasets.get(dataset)!]]) },
      redis,
      log,
    });
    await ngdb.start();
    stops.unshift(() => ngdb.stop());
    const { pool: agentPool } = await testPool();
    await migrate(agentPool, 'agent');
    await publishDictionary(registry.client, dictionary, 'BCA'); // the dictionary publisher's step
    const bca = new Publisher({
      kafka: as(principals.agency('BCA')),
      registry: registry.client,
      dictionary,
      agency: 'BCA',
      ledger: new VersionLedger(agentPool),
      log,
    });
    await bca.connect();
    stops.unshift(() => bca.close());
    const citizens = sampleCitizens(120, 4242);
    const result = await bca.publishBatch(
      dataset,
      citizens.map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    expect(result.rejected).toBe(0);

    const subscription = await startSubscription(
      { agreement: agreementId, dataset },
      {
        kafka: as(principals.agency('UBND-HN')),
        registry: registry.client,
        dictionary,
        databaseUrl: inject('services').databaseUrl,
        agency: 'UBND-HN',
        redis,
        log,
      },
    );
    stops.unshift(async () => {
      await subscription.pool.query(`DROP SCHEMA lt_share_${agreementId.replace(/-/g, '_')} CASCADE`);
      await subscription.stop();
    });

    const inHanoi = citizens.filter((citizen) => HANOI.includes(String(citizen.commune_code))).length;
    expect(inHanoi).toBeGreaterThan(0);
    await expect
      .poll(
        async () =>
          (await groupLag(root, consumerGroups.coordinator, topics.source(dataset))) +
          (await groupLag(root, consumerGroups.ngdb, topics.source(dataset))) +
          (await groupLag(
            root,
            consumerGroups.subscription('UBND-HN', agreementId),
            topics.share(agreementId),
          )),
        { timeout: 60_000, interval: 500 },
      )
      .toBe(0);
    const copied = await subscription.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM lt_share_${agreementId.replace(/-/g, '_')}.${subscription.sink.table.name} WHERE NOT _deleted`,
    );
    expect(Number(copied.rows[0]!.n)).toBe(inHanoi);
    expect(ngdb.stats.applied).toBe(citizens.length);
    expect(coordinator.degraded).toEqual([]);
  }, 180_000);
});
