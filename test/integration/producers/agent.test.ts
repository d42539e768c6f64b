import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { readAgentConfig, startAgent, type RunningAgent } from '../../../producers/agent/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { caFile } from '../../../infra/security/principals.ts';
import {
  env,
  kafkaSecurity,
  log,
  testKafka,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

/**
 * The Agent Node's TLS and SCRAM settings for the secure test broker (as its super user: the test grants
 * nothing), its password in an environment variable as an agency's would be; none for a plaintext broker.
 */
function agentKafkaSecurity(): string {
  if (!kafkaSecurity) return '';
  process.env.LT_TEST_KAFKA_PASSWORD = kafkaSecurity.password;
  return (
    `, ssl: true, caFile: ${caFile(env.LIENTHONG_HOME)}, sasl: { mechanism: scram-sha-512, ` +
    `username: ${kafkaSecurity.username}, passwordEnv: LT_TEST_KAFKA_PASSWORD }`
  );
}

/** POSTs `body` over HTTPS trusting only `ca`; resolves the status code. */
function postTrusting(
  url: string,
  ca: string,
  headers: Record<string, string>,
  body: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { method: 'POST', ca, headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end(body);
  });
}

function configFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lt-agent-')), 'agent.yaml');
  writeFileSync(path, text);
  return path;
}

describe('lienthong agent: an agency’s Agent Node from its config file', () => {
  const services = inject('services');
  const token = 'correct-horse-battery-staple';
  const agents: RunningAgent[] = [];
  afterAll(async () => {
    for (const agent of agents) await agent.stop();
  });

  it('refuses a config written for another agency, and names the file, line and field of a bad value', () => {
    const other = configFile('agency: BTC\n');
    expect(() => readAgentConfig(other, 'BCA')).toThrow(/is the configuration of BTC, not of BCA/);
    const bad = configFile('agency: BCA\ninputs:\n  http:\n    port: "eighty"\n');
    expect(() => readAgentConfig(bad, 'BCA')).toThrow(/agent\.yaml:4: inputs\.http\.port: /);
  });

  it('refuses SASL without TLS, which would send the password or the records in the clear', () => {
    process.env.LT_TEST_AGENT_PASSWORD = 'secret-from-the-environment';
    const sasl =
      'agency: BCA\nkafka:\n  sasl:\n    mechanism: plain\n    username: agency.BCA\n    passwordEnv: LT_TEST_AGENT_PASSWORD\n';
    expect(() => readAgentConfig(configFile(sasl), 'BCA')).toThrow(
      /kafka\.sasl without kafka\.ssl .*password/,
    );
    const scram = sasl.replace('plain', 'scram-sha-512');
    expect(() => readAgentConfig(configFile(scram), 'BCA')).toThrow(
      /kafka\.sasl without kafka\.ssl .*records/,
    );
    expect(readAgentConfig(configFile(`${scram}  ssl: true\n`), 'BCA').kafka.ssl).toBe(true);
    const caOnly = 'agency: BCA\nkafka:\n  caFile: /etc/lienthong/ca.crt\n';
    expect(() => readAgentConfig(configFile(caOnly), 'BCA')).toThrow(
      /kafka\.caFile is set but kafka\.ssl is off/,
    );
    delete process.env.LT_TEST_AGENT_PASSWORD;
  });

  it('publishes what arrives by HTTP ingest and by the outbox, through one publish path', async () => {
    const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
    const topic = topics.source(dataset.id);
    const kafka = testKafka();
    await ensureTopics(kafka, [
      { topic, partitions: 2 },
      { topic: topics.deadLetter('ingest', 'BCA'), partitions: 1 },
    ]);
    const registry = await testRegistry();
    const schema = uniqueName('t_agent_');
    const path = configFile(
      [
        'agency: BCA',
        `kafka: { brokers: [${services.kafkaBrokers.join(', ')}]${agentKafkaSecurity()} }`,
        `registry: { url: ${registry.url} }`,
        `database: { urlEnv: LT_TEST_AGENCY_DB, schema: ${schema} }`,
        'inputs:',
        `  http: { enabled: true, port: 0, tokens: [{ name: test-system, sha256: ${createHash('sha256').update(token).digest('hex')} }] }`,
        '  outbox: { enabled: true, pollIntervalMs: 200 }',
        '',
      ].join('\n'),
    );
    process.env.LT_TEST_AGENCY_DB = services.databaseUrl;
    await publishDictionary(registry.client, dictionary, 'BCA');
    const agent = await startAgent(readAgentConfig(path, 'BCA'), dictionary, log);
    agents.push(agent);

    const [viaHttp, viaOutbox] = sampleCitizens(2, 31);
    // HTTP ingest serves TLS by default, with a certificate the platform CA signed: a client trusting it posts
    expect(agent.ingestUrl).toMatch(/^https:/);
    const status = await postTrusting(
      `${agent.ingestUrl}/v1/datasets/${dataset.id}/changes`,
      readFileSync(caFile(env.LIENTHONG_HOME), 'utf8'),
      { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      JSON.stringify([{ op: 'CREATE', version: 1, after: viaHttp }]),
    );
    expect(status).toBe(200);
    // and a client that does not trust it is refused before it sends anything
    await expect(
      fetch(`${agent.ingestUrl}/v1/datasets/${dataset.id}/changes`, { method: 'POST' }),
    ).rejects.toThrow();

    await agent.pool.query(
      `INSERT INTO lt_outbox (dataset, op, key, version, payload) VALUES ($1, 'CREATE', $2, 1, $3)`,
      [dataset.id, viaOutbox!.personal_id, JSON.stringify(viaOutbox)],
    );
    await agent.relay!.drained(30_000);

    const offsets = await kafka.admin().fetchTopicOffsets(topic);
    expect(offsets.reduce((sum, partition) => sum + Number(partition.high), 0)).toBe(2);
    const { rows } = await agent.pool.query<{ published: boolean }>(
      'SELECT published_at IS NOT NULL AS published FROM lt_outbox',
    );
    expect(rows).toEqual([{ published: true }]);
  });
});
