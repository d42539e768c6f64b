import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExitCodes } from '../../../infra/errors.ts';
import type { AclGrant } from '../../../infra/kafka/acl.ts';
import { setScramPassword } from '../../../infra/kafka/scram.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { caFile, newPassword, principals, writeCredential } from '../../../infra/security/principals.ts';
import { desiredAcls } from '../../../platform/access/plan.ts';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import { recordOperatorAction } from '../../../platform/audit/operator-audit.ts';
import type { PlatformStatus } from '../../../platform/status/index.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import {
  childKafkaEnv,
  env,
  kafkaSecurity,
  log,
  testKafka,
  testPool,
  uniqueName,
} from '../../helpers/services.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const services = inject('services');

/** Runs `lienthong …` as an operator would; resolves with its exit code and output. */
function lienthong(
  args: string[],
  extraEnv: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['cli/lienthong.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: services.databaseUrl, LOG_LEVEL: 'info', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, stdout, stderr })));
}

/** kafkajs's form of one of our grants (the operator's, from the access plan). */
function kafkajsAcl(grant: AclGrant) {
  return {
    principal: grant.principal,
    host: '*',
    resourceType: AclResourceTypes[grant.resource],
    resourceName: grant.name,
    resourcePatternType: ResourcePatternTypes[grant.pattern],
    operation: AclOperationTypes[grant.operation],
    permissionType: AclPermissionTypes.ALLOW,
  };
}

/**
 * The environment of a CLI that connects as lt-operator: on the secure test broker, a LIENTHONG_HOME of its own
 * holding the platform CA and an lt-operator credential the broker knows, with exactly the operator's grants of
 * the access plan — so the test proves those grants are enough. On a plaintext broker, plaintext.
 */
async function operatorEnv(): Promise<Record<string, string>> {
  if (!kafkaSecurity) return childKafkaEnv();
  const home = mkdtempSync(join(tmpdir(), 'lt-status-home-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  mkdirSync(dirname(caFile(home)), { recursive: true });
  copyFileSync(caFile(env.LIENTHONG_HOME), caFile(home));
  const password = newPassword();
  setScramPassword(
    { home: env.LIENTHONG_HOME, brokers: services.kafkaBrokers, admin: kafkaSecurity, log },
    principals.operator,
    password,
  );
  writeCredential(home, { principal: principals.operator, password, issuedAt: new Date().toISOString() });
  const operatorGrants = desiredAcls({ dictionary: loadDictionary(), agreements: [] }).filter(
    (grant) => grant.principal === `User:${principals.operator}`,
  );
  const admin = testKafka().admin();
  await admin.connect();
  await admin.createAcls({ acl: operatorGrants.map(kafkajsAcl) });
  await admin.disconnect();
  return { KAFKA_BROKERS: services.kafkaBrokers.join(','), LIENTHONG_HOME: home };
}

describe('lienthong status', () => {
  const dictionary = loadDictionary();
  const sourceTopic = topics.source(uniqueName('status.t'));
  const deadLetterTopic = topics.deadLetter(uniqueName('st'));
  let schema: string;
  let agreementId: string;
  let suspendedId: string;
  let group: string;
  let asOperator: Record<string, string>;

  beforeAll(async () => {
    const platform = await testPool();
    schema = platform.schema;
    await migrate(platform.pool, 'platform');
    const store = new AgreementStore(platform.pool, dictionary);
    const request = (id: string) => ({
      id,
      subscriber: 'UBND-HN',
      dataset: 'population.citizen',
      fields: ['personal_id', 'full_name'],
      purpose: 'local administrative procedures',
      legalBasis: 'Decree 278/2025/ND-CP, method (b)',
    });
    agreementId = uniqueName('st-');
    suspendedId = uniqueName('st-');
    await store.create(request(agreementId), 'test');
    await store.approve(agreementId, 'test');
    await store.create(request(suspendedId), 'test');
    await store.approve(suspendedId, 'test');
    await store.suspend(suspendedId, 'security review', 'test');
    await recordOperatorAction(platform.pool, {
      principal: principals.operator,
      action: 'replay',
      target: consumerGroups.subscription('UBND-HN', agreementId),
      outcome: 'planned',
    });

    // a consumer group 6 records behind on one topic, and a dead-letter topic holding 3 records
    const kafka = testKafka();
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: sourceTopic, numPartitions: 2 },
        { topic: deadLetterTopic, numPartitions: 1 },
      ],
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: sourceTopic,
      messages: Array.from({ length: 10 }, (_, index) => ({ partition: index % 2, value: `v${index}` })),
    });
    await producer.send({
      topic: deadLetterTopic,
      messages: Array.from({ length: 3 }, (_, index) => ({ value: `dead ${index}` })),
    });
    await producer.disconnect();
    group = consumerGroups.subscription('UBND-HN', agreementId);
    await admin.setOffsets({
      groupId: group,
      topic: sourceTopic,
      partitions: [
        { partition: 0, offset: '2' },
        { partition: 1, offset: '2' },
      ],
    });
    await admin.disconnect();
    asOperator = await operatorEnv();
  });

  it('--json shows the agreements, the lag of a consumer group, the dead letters and a replay in progress', async () => {
    const { code, stdout, stderr } = await lienthong(['status', '--json', '--schema', schema], asOperator);
    expect(stderr).toBe('');
    expect(code).toBe(ExitCodes.ok);
    const status = JSON.parse(stdout) as PlatformStatus;
    expect(status.services.kafka.reachable).toBe(true);
    expect(status.services.postgres.reachable).toBe(true);
    expect(status.agreements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: agreementId, status: 'approved', active: true, degraded: null }),
        expect.objectContaining({
          id: suspendedId,
          status: 'suspended',
          active: false,
          statusReason: 'security review',
        }),
      ]),
    );
    expect(status.agencies.find((agency) => agency.code === 'UBND-HN')?.activeAgreements).toBe(1);
    expect(status.agencies.find((agency) => agency.code === 'BCA')?.owns).toContain('population.citizen');
    const lagging = status.groups?.find((entry) => entry.id === group);
    expect(lagging).toMatchObject({ state: 'Empty', members: 0, lag: 6 });
    expect(lagging?.topics).toEqual([
      {
        topic: sourceTopic,
        lag: 6,
        partitions: [
          { partition: 0, committed: 2, logStart: 0, logEnd: 5, lag: 3, belowLogStart: false },
          { partition: 1, committed: 2, logStart: 0, logEnd: 5, lag: 3, belowLogStart: false },
        ],
      },
    ]);
    expect(status.deadLetters).toContainEqual({ topic: deadLetterTopic, records: 3 });
    expect(status.operations?.inProgress).toEqual([
      expect.objectContaining({ action: 'replay', target: group, outcome: 'planned' }),
    ]);
  });

  it('prints the same for a person', async () => {
    const { code, stdout } = await lienthong(['status', '--schema', schema], asOperator);
    expect(code).toBe(ExitCodes.ok);
    expect(stdout).toMatch(
      new RegExp(`${group}\\s+Empty\\s+0\\s+6\\s+${sourceTopic.replace(/\./g, '\\.')} 6`),
    );
    expect(stdout).toMatch(new RegExp(`${suspendedId}\\s+UBND-HN\\s+population\\.citizen\\s+suspended`));
    expect(stdout).toMatch(new RegExp(`${deadLetterTopic.replace(/\./g, '\\.')}\\s+3`));
    expect(stdout).toMatch(/in progress since\s+action\s+target/);
  });

  it('exits 2 for a usage error', async () => {
    const { code, stderr } = await lienthong(['status', '--recent', 'many'], asOperator);
    expect(code).toBe(ExitCodes.usage);
    expect(stderr).toContain("option '--recent <n>' argument 'many' is invalid");
  });

  it('exits 3 for bad configuration: a malformed KAFKA_BROKERS, a missing credential', async () => {
    const malformed = await lienthong(['status', '--schema', schema], {
      ...asOperator,
      KAFKA_BROKERS: 'nope',
    });
    expect(malformed.code).toBe(ExitCodes.configuration);
    expect(malformed.stderr).toContain('LT_CONFIG_INVALID');
    if (kafkaSecurity) {
      const home = mkdtempSync(join(tmpdir(), 'lt-status-empty-'));
      const noCredential = await lienthong(['status'], { ...asOperator, LIENTHONG_HOME: home });
      rmSync(home, { recursive: true, force: true });
      expect(noCredential.code).toBe(ExitCodes.configuration);
      expect(noCredential.stderr).toContain('lienthong credentials issue --principal lt-operator');
    }
  });

  it('exits 4 when Kafka cannot be reached, still showing what PostgreSQL holds', async () => {
    const { code, stdout, stderr } = await lienthong(['status', '--json', '--schema', schema], {
      ...asOperator,
      KAFKA_BROKERS: '127.0.0.1:1',
    });
    expect(code).toBe(ExitCodes.unreachable);
    expect(stderr).toContain('LT_KAFKA_UNREACHABLE');
    expect(stderr).not.toMatch(/\n\s+at /); // a message and a hint, no stack trace
    const status = JSON.parse(stdout) as PlatformStatus;
    expect(status.services.kafka).toMatchObject({
      reachable: false,
      problem: { code: 'LT_KAFKA_UNREACHABLE' },
    });
    expect(status.groups).toBeNull();
    expect(status.agreements?.map((agreement) => agreement.id)).toContain(agreementId);
  });

  it('exits 4 when PostgreSQL cannot be reached, still showing what Kafka holds', async () => {
    const { code, stdout, stderr } = await lienthong(['status', '--json', '--schema', schema], {
      ...asOperator,
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/postgres',
    });
    expect(code).toBe(ExitCodes.unreachable);
    expect(stderr).toContain('LT_POSTGRES_UNREACHABLE');
    const status = JSON.parse(stdout) as PlatformStatus;
    expect(status.services.postgres.reachable).toBe(false);
    expect(status.agreements).toBeNull();
    expect(status.groups?.find((entry) => entry.id === group)?.lag).toBe(6);
  });
});
