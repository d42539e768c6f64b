import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { SinkTable } from '../../schemas/postgres/table.ts';
import { LtError } from '../../infra/errors.ts';
import { groupLag } from '../../infra/kafka/admin.ts';
import { createKafka, type KafkaSecurity } from '../../infra/kafka/client.ts';
import { subjects, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import { SERVICE_NODE_FLAGS } from '../../infra/node-flags.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { syncTopics } from '../../platform/topics/plan.ts';
import { Publisher, VersionLedger, type Change } from '../../producers/publisher/index.ts';
import { SAMPLE_RESIDENCES } from '../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { projectDataset } from '../../schemas/model/projection.ts';
import {
  createRegistryClient,
  registerDatasetSchemas,
  type SchemaRegistry,
} from '../../schemas/registry/client.ts';
import type { Workload } from './workload.ts';

const HELPERS = fileURLToPath(new URL('../helpers/', import.meta.url));

/** Hà Nội's communes in the sample data: UBND-HN's agreement (a filter on a shared field). */
const HANOI = SAMPLE_RESIDENCES.find((residence) => residence.province === '01')!.communes;

/** The two subscriptions every run materializes, besides the NGDB. */
export const SUBSCRIPTIONS = {
  hn: {
    subscriber: 'UBND-HN',
    fields: ['personal_id', 'full_name', 'birth_date', 'commune_code'],
    filter: `commune_code in [${HANOI.map((code) => `"${code}"`).join(', ')}]`,
    keep: (record: DatasetRecord) => (HANOI as readonly string[]).includes(String(record.commune_code)),
  },
  bhxh: {
    subscriber: 'BHXH',
    fields: ['personal_id', 'full_name', 'birth_date', 'gender', 'permanent_address'],
    filter: 'true',
    keep: () => true,
  },
} as const;

export type ServiceName = 'coordinator' | 'ngdb' | 'sink-hn' | 'sink-bhxh';

const NGDB_FIELDS = [
  'personal_id',
  'full_name',
  'birth_date',
  'gender',
  'province_code',
  'commune_code',
  'permanent_address',
];

/** One service of the pipeline, as its own process (so a fault can SIGKILL it). */
class Service {
  private child: ChildProcess | null = null;
  output = '';
  /** How often the process ended without being asked to. */
  crashes = 0;
  private stopping = false;
  readonly name: ServiceName;
  private readonly script: string;
  private readonly env: Record<string, string>;
  private readonly ready: string;

  constructor(name: ServiceName, script: string, env: Record<string, string>, ready: string) {
    this.name = name;
    this.script = script;
    this.env = env;
    this.ready = ready;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    this.stopping = false;
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, `${HELPERS}${this.script}`], {
      env: { ...process.env, LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const from = this.output.length;
    // LT_FAULTS_LOGS=<dir> also keeps every line each service printed, in <dir>/<service>.log
    const logs = process.env.LT_FAULTS_LOGS;
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-200_000);
      if (logs) appendFileSync(`${logs}/${this.name}.log`, chunk);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', () => {
      if (!this.stopping) this.crashes++;
    });
    const deadline = Date.now() + 60_000;
    while (!this.output.slice(Math.max(0, from - 1)).includes(this.ready)) {
      if (!this.running) throw new Error(`${this.name} exited while starting:\n${this.output.slice(-3_000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start:\n${this.output.slice(-3_000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Ends the process with `signal` and waits for it; SIGKILL is a crash mid-batch. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    this.stopping = true;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

export interface Copies {
  ngdb: string;
  hn: string;
  bhxh: string;
}

export interface RunReport {
  events: number;
  /** Keys whose row differs from, is missing from or is extra to the expected copy, over the three copies. */
  lost: number;
  /**
   * NGDB history rows beyond one per distinct event published (a change stored twice); history rows missing
   * count as lost.
   */
  appliedTwice: number;
  checksumsEqual: boolean;
  checksums: { actual: Copies; expected: Copies };
  /** A few keys that differ, with what the copy has and what it should have. */
  differences: string[];
  /** Per dead-letter topic, records whose source is this run's source topic, by `lt-error-code`. */
  deadLetters: Record<string, Record<string, number>>;
  recoverSeconds: number;
  servicesRunning: boolean;
  crashes: number;
  /** Records on the source topic (duplicates included) and NGDB history rows: where a loss happened. */
  sourceRecords: number;
  historyRows: number;
}

export interface WorldOptions {
  name: string;
  brokers: string[];
  databaseUrl: string;
  redisUrl: string;
  registryUrl: string;
  /** The secure cluster's super user: the suite's own clients and its service processes connect as it. */
  security: KafkaSecurity;
  log: Logger;
}

/**
 * One run of the whole pipeline on an isolated copy of population.citizen: BCA's publisher (in this process),
 * the coordinator, the NGDB sink and two subscriber sinks (each its own process), two agreements.
 */
export class World {
  readonly dataset: Dataset;
  readonly dictionary: Dictionary;
  readonly kafka: Kafka;
  readonly services = new Map<ServiceName, Service>();
  readonly registry: SchemaRegistry;
  private readonly ids: Record<string, string>;
  private readonly options: WorldOptions;
  private pool: Pool | null = null;
  private publisher: Publisher | null = null;

  constructor(options: WorldOptions) {
    this.options = options;
    const real = loadDictionary();
    const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
    this.dataset = { ...getDataset(real, 'population.citizen'), id: `f${suffix}.citizen` };
    this.dictionary = { ...real, datasets: new Map([...real.datasets, [this.dataset.id, this.dataset]]) };
    this.ids = {
      platform: `f_${suffix}_platform`,
      ngdb: `f_${suffix}_ngdb`,
      agent: `f_${suffix}_agent`,
      hn: `f_${suffix}_hn`,
      bhxh: `f_${suffix}_bhxh`,
      agreementHn: `f${suffix}-hn`,
      agreementBhxh: `f${suffix}-bhxh`,
      redis: `lt-faults:${suffix}:`,
    };
    this.kafka = createKafka({
      brokers: options.brokers,
      clientId: `faults-${suffix}`,
      log: options.log,
      security: options.security,
    });
    this.registry = createRegistryClient({
      url: options.registryUrl,
      auth: { username: options.security.username, password: options.security.password },
      ca: options.security.ca,
    });
  }

  get sourceTopic(): string {
    return topics.source(this.dataset.id);
  }

  private groups(): Record<ServiceName, { group: string; topic: string }> {
    return {
      coordinator: { group: `lt.coordinator.${this.ids.platform}`, topic: this.sourceTopic },
      ngdb: { group: `lt.ngdb.${this.ids.ngdb}`, topic: this.sourceTopic },
      'sink-hn': {
        group: `lt.sink.ubnd-hn.${this.ids.agreementHn}`,
        topic: topics.share(this.ids.agreementHn!),
      },
      'sink-bhxh': {
        group: `lt.sink.bhxh.${this.ids.agreementBhxh}`,
        topic: topics.share(this.ids.agreementBhxh!),
      },
    };
  }

  /** Topics, agreements, the publisher, then every service; resolves once all consume. */
  async start(): Promise<void> {
    const { options } = this;
    const only = { ...this.dictionary, datasets: new Map([[this.dataset.id, this.dataset]]) };
    await syncTopics(this.kafka, { dictionary: only, agreements: [], sourcePartitions: 3 });
    this.pool = await createPool({ url: options.databaseUrl, max: 4 });
    const platform = await createPool({ url: options.databaseUrl, schema: this.ids.platform, max: 2 });
    await migrate(platform, 'platform');
    const store = new AgreementStore(platform, this.dictionary);
    for (const [id, spec] of [
      [this.ids.agreementHn!, SUBSCRIPTIONS.hn],
      [this.ids.agreementBhxh!, SUBSCRIPTIONS.bhxh],
    ] as const) {
      await store.create(
        {
          id,
          subscriber: spec.subscriber,
          dataset: this.dataset.id,
          fields: [...spec.fields],
          filter: spec.filter,
          purpose: 'fault suite',
          legalBasis: 'Decree 278/2025/ND-CP, method (b)',
        },
        'faults',
      );
      await store.approve(id, 'faults');
    }
    await platform.end();
    const agent = await createPool({ url: options.databaseUrl, schema: this.ids.agent, max: 4 });
    await migrate(agent, 'agent');
    await registerDatasetSchemas(this.registry, this.dataset); // the dictionary publisher's step
    this.publisher = new Publisher({
      kafka: this.kafka,
      registry: this.registry,
      dictionary: this.dictionary,
      agency: 'BCA',
      ledger: new VersionLedger(agent),
      log: options.log,
      sendTimeoutMs: 15_000,
    });
    this.agentPool = agent;
    await this.publisher.connect();
    // the schemas exist before any consumer starts
    await this.publisher.publishBatch(this.dataset.id, []);

    const common = {
      LT_DATABASE_URL: options.databaseUrl,
      KAFKA_BROKERS: options.brokers.join(','),
      KAFKA_PRINCIPAL: options.security.username, // its credential is under the same LIENTHONG_HOME
      LT_REGISTRY_URL: options.registryUrl,
      LT_DATASET: this.dataset.id,
      LT_DATASET_FROM: 'population.citizen',
      REDIS_URL: options.redisUrl,
    };
    const groups = this.groups();
    this.services.set(
      'coordinator',
      new Service(
        'coordinator',
        'run-coordinator.ts',
        { ...common, LT_PLATFORM_SCHEMA: this.ids.platform!, LT_GROUP: groups.coordinator.group },
        'coordinator running',
      ),
    );
    this.services.set(
      'ngdb',
      new Service(
        'ngdb',
        'run-ngdb.ts',
        {
          ...common,
          LT_NGDB_SCHEMA: this.ids.ngdb!,
          LT_GROUP: groups.ngdb.group,
          LT_REDIS_PREFIX: `${this.ids.redis}ngdb:`,
        },
        'ngdb sink running',
      ),
    );
    for (const [name, which, agreement] of [
      ['sink-hn', 'hn', this.ids.agreementHn],
      ['sink-bhxh', 'bhxh', this.ids.agreementBhxh],
    ] as const) {
      const spec = SUBSCRIPTIONS[which];
      this.services.set(
        name,
        new Service(
          name,
          'run-sink.ts',
          {
            ...common,
            LT_SINK_SCHEMA: this.ids[which]!,
            LT_TOPIC: topics.share(agreement!),
            LT_GROUP: groups[name].group,
            LT_REDIS_PREFIX: `${this.ids.redis}${which}:`,
            LT_FIELDS: spec.fields.join(','),
            LT_OWNER: spec.subscriber,
            LT_REDIS_DEGRADE: '1',
            LT_SESSION_TIMEOUT_MS: '10000',
          },
          'sink started',
        ),
      );
    }
    await this.services.get('coordinator')!.start(); // it makes the share topics the sinks read
    await this.waitForShareTopics();
    await Promise.all(
      (['ngdb', 'sink-hn', 'sink-bhxh'] as const).map((name) => this.services.get(name)!.start()),
    );
  }

  private agentPool: Pool | null = null;

  private async waitForShareTopics(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const wanted = [topics.share(this.ids.agreementHn!), topics.share(this.ids.agreementBhxh!)];
      const deadline = Date.now() + 60_000;
      while (!wanted.every((topic) => this.knownTopics.has(topic))) {
        if (Date.now() > deadline) throw new Error('the coordinator made no share topics');
        this.knownTopics = new Set(await admin.listTopics());
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await admin.disconnect();
    }
  }

  private knownTopics = new Set<string>();

  /**
   * Publishes the workload as an agency would: every batch until it is accepted, retrying after a retriable
   * failure with the same eventIds (a batch that did reach the broker is then answered `alreadyPublished`).
   * `atMidpoint` runs once half the batches are published (while the services are busy with them).
   */
  async publish(workload: Workload, atMidpoint?: () => Promise<void>): Promise<{ retries: number }> {
    let retries = 0;
    const half = Math.floor(workload.batches.length / 2);
    let midpoint: Promise<void> | null = null;
    for (const [index, batch] of workload.batches.entries()) {
      if (index === half && atMidpoint) midpoint = atMidpoint();
      retries += await this.publishBatch(batch);
    }
    await midpoint;
    return { retries };
  }

  /** One batch, until accepted; returns how many attempts failed. */
  async publishBatch(batch: readonly Change[], { partial = false } = {}): Promise<number> {
    let failures = 0;
    const deadline = Date.now() + 180_000;
    for (;;) {
      try {
        const result = await this.publisher!.publishBatch(this.dataset.id, batch, { partial });
        const refused = result.outcomes.filter((outcome) => outcome.status === 'rejected');
        if (refused.length > 0 && !partial)
          throw new Error(`the publisher refused: ${JSON.stringify(refused.slice(0, 3))}`);
        return failures;
      } catch (error) {
        if (!(error instanceof LtError) || !error.retriable || Date.now() > deadline) throw error;
        failures++;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /**
   * What retention does to a share topic while its subscriber is offline, at once: removes every record it
   * holds now (the log start offset moves to the end).
   */
  async removeShareRecords(which: 'hn' | 'bhxh'): Promise<void> {
    const topic = topics.share(which === 'hn' ? this.ids.agreementHn! : this.ids.agreementBhxh!);
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      await admin.deleteTopicRecords({
        topic,
        partitions: offsets.map(({ partition, high }) => ({ partition, offset: high })),
      });
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until the agreement is at a revision above `above` and the earlier revisions are retired. */
  async waitForRevision(which: 'hn' | 'bhxh', above: number, timeoutMs = 180_000): Promise<number> {
    const id = which === 'hn' ? this.ids.agreementHn! : this.ids.agreementBhxh!;
    const schema = quoteIdent(this.ids.platform!);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await this.pool!.query<{ revision: number; earlier: string }>(
        `SELECT a.revision, (SELECT count(*) FROM ${schema}.agreement_membership m
                              WHERE m.agreement_id = a.id AND m.revision < a.revision) AS earlier
           FROM ${schema}.agreement a WHERE a.id = $1`,
        [id],
      );
      const row = rows[0]!;
      if (row.revision > above && Number(row.earlier) === 0) return row.revision;
      if (Date.now() > deadline)
        throw new Error(`agreement ${id} still at revision ${row.revision} (${row.earlier} earlier rows)`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Writes records to the source topic as they are, bypassing the Agent Node (a hostile or broken producer). */
  async produceRaw(messages: { key: Buffer | string | null; value: Buffer | null }[]): Promise<void> {
    const producer = this.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      for (let start = 0; start < messages.length; start += 500)
        await producer.send({
          topic: this.sourceTopic,
          acks: -1,
          messages: messages.slice(start, start + 500),
        });
    } finally {
      await producer.disconnect();
    }
  }

  /** The first `count` records of the source topic, bytes as they are. */
  async readSource(count: number): Promise<{ key: Buffer | null; value: Buffer | null }[]> {
    const consumer = this.kafka.consumer({ groupId: `faults-read-${randomUUID()}` });
    const read: { key: Buffer | null; value: Buffer | null }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: this.sourceTopic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (read.length < count) read.push({ key: message.key, value: message.value });
      },
    });
    const deadline = Date.now() + 60_000;
    while (read.length < count && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    await consumer.disconnect();
    return read;
  }

  /** The value schema id of the source topic, and one of another subject (a share topic's). */
  async schemaIds(): Promise<{ source: number; share: number }> {
    return {
      source: await this.registry.getLatestSchemaId(subjects.value(this.sourceTopic)),
      share: await this.registry.getLatestSchemaId(subjects.value(topics.share(this.ids.agreementHn!))),
    };
  }

  /** Publishes changes that may be refused, and returns the outcomes (for the refusals a row expects). */
  async publishRaw(changes: readonly Change[]) {
    return this.publisher!.publishBatch(this.dataset.id, changes, { partial: true });
  }

  /**
   * Waits until every service has consumed everything there is (lag 0 on every group, twice in a row with
   * no new share records in between); returns the seconds it took.
   */
  async drain(timeoutMs = 300_000): Promise<number> {
    const started = Date.now();
    const groups = Object.values(this.groups());
    let quiet = 0;
    let last = '';
    while (quiet < 2) {
      if (Date.now() - started > timeoutMs) {
        const lags = await Promise.all(
          groups.map(({ group, topic }) => groupLag(this.kafka, group, topic).catch(() => -1)),
        );
        const services = [...this.services.values()];
        throw new Error(
          `not drained after ${timeoutMs / 1000} s: lags ${JSON.stringify(lags)}; ` +
            services.map((s) => `${s.name} running=${s.running}`).join(', ') +
            services
              .filter((s) => !s.running)
              .map((s) => `\n--- ${s.name} (ended) ---\n${s.output.slice(-6_000)}`)
              .join(''),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      try {
        const lags = await Promise.all(groups.map(({ group, topic }) => groupLag(this.kafka, group, topic)));
        const ends = await this.shareEnds();
        if (lags.every((lag) => lag === 0) && ends === last) quiet++;
        else quiet = 0;
        last = ends;
      } catch {
        quiet = 0; // the broker may be restarting
      }
    }
    return (Date.now() - started) / 1000;
  }

  private async sourceRecords(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.sourceTopic);
      return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until the coordinator and the NGDB sink have read the whole source topic. */
  async drainSource(timeoutMs = 120_000): Promise<void> {
    const groups = this.groups();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lags = await Promise.all(
        (['coordinator', 'ngdb'] as const).map((name) =>
          groupLag(this.kafka, groups[name].group, groups[name].topic),
        ),
      );
      if (lags.every((lag) => lag === 0)) return;
      if (Date.now() > deadline) throw new Error(`source not drained: lags ${JSON.stringify(lags)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private async shareEnds(): Promise<string> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await Promise.all(
        [this.ids.agreementHn!, this.ids.agreementBhxh!].map((id) =>
          admin.fetchTopicOffsets(topics.share(id)),
        ),
      );
      return JSON.stringify(offsets.map((partitions) => partitions.map((p) => p.high)));
    } finally {
      await admin.disconnect();
    }
  }

  /** The three copies and what they must hold, as content checksums, and how many keys differ. */
  async compare(
    workload: Workload,
    extraEvents: number,
  ): Promise<
    Pick<RunReport, 'lost' | 'appliedTwice' | 'checksumsEqual' | 'checksums' | 'differences' | 'historyRows'>
  > {
    const pool = this.pool!;
    const rowsOf = async (
      schema: string,
      dataset: Dataset,
      fields: readonly string[],
    ): Promise<Map<string, string>> => {
      const table = `${quoteIdent(schema)}.${quoteIdent(new SinkTable(dataset).name)}`;
      const columns = fields.map((field) => `${quoteIdent(field)}::text`).join(', ');
      const { rows } = await pool.query<Record<string, string | null>>(
        `SELECT ${columns} FROM ${table} WHERE NOT "_deleted" ORDER BY 1`,
      );
      return new Map(
        rows.map((row) => [String(row[fields[0]!]), fields.map((field) => row[field] ?? '').join('|')]),
      );
    };
    const expectedOf = (
      fields: readonly string[],
      keep: (record: DatasetRecord) => boolean,
    ): Map<string, string> =>
      new Map(
        [...workload.expected]
          .filter(([, record]) => keep(record))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, record]) => [
            key,
            fields
              .map((field) =>
                record[field] === null || record[field] === undefined ? '' : String(record[field]),
              )
              .join('|'),
          ]),
      );
    const digest = (rows: Map<string, string>): string =>
      createHash('sha256')
        .update(
          [...rows]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([, line]) => line)
            .join('\n'),
        )
        .digest('hex')
        .slice(0, 16);
    const samples: string[] = [];
    const differing = (actual: Map<string, string>, expected: Map<string, string>): number => {
      let count = 0;
      const note = (key: string): void => {
        count++;
        if (samples.length < 6)
          samples.push(`${key}: has ${actual.get(key) ?? '(none)'} | wants ${expected.get(key) ?? '(none)'}`);
      };
      for (const [key, line] of expected) if (actual.get(key) !== line) note(key);
      for (const key of actual.keys()) if (!expected.has(key)) note(key);
      return count;
    };
    const copies = {
      ngdb: [await rowsOf(this.ids.ngdb!, this.dataset, NGDB_FIELDS), expectedOf(NGDB_FIELDS, () => true)],
      hn: [
        await rowsOf(
          this.ids.hn!,
          projectDataset(this.dataset, SUBSCRIPTIONS.hn.fields),
          SUBSCRIPTIONS.hn.fields,
        ),
        expectedOf(SUBSCRIPTIONS.hn.fields, SUBSCRIPTIONS.hn.keep),
      ],
      bhxh: [
        await rowsOf(
          this.ids.bhxh!,
          projectDataset(this.dataset, SUBSCRIPTIONS.bhxh.fields),
          SUBSCRIPTIONS.bhxh.fields,
        ),
        expectedOf(SUBSCRIPTIONS.bhxh.fields, SUBSCRIPTIONS.bhxh.keep),
      ],
    } as const;
    const actual = { ngdb: digest(copies.ngdb[0]), hn: digest(copies.hn[0]), bhxh: digest(copies.bhxh[0]) };
    const expected = { ngdb: digest(copies.ngdb[1]), hn: digest(copies.hn[1]), bhxh: digest(copies.bhxh[1]) };
    const history = `${quoteIdent(this.ids.ngdb!)}.${quoteIdent(`${new SinkTable(this.dataset).name}_history`)}`;
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${history}`);
    const historyRows = Number(rows[0]!.n);
    const historyExpected = workload.events + extraEvents;
    return {
      lost:
        differing(copies.ngdb[0], copies.ngdb[1]) +
        differing(copies.hn[0], copies.hn[1]) +
        differing(copies.bhxh[0], copies.bhxh[1]) +
        Math.max(0, historyExpected - historyRows),
      appliedTwice: Math.max(0, historyRows - historyExpected),
      differences: samples,
      historyRows,
      checksumsEqual:
        actual.ngdb === expected.ngdb && actual.hn === expected.hn && actual.bhxh === expected.bhxh,
      checksums: { actual, expected },
    };
  }

  /** Dead letters of this run's source topic, per dead-letter topic and error code. */
  async deadLetters(): Promise<Record<string, Record<string, number>>> {
    const dlqs = [topics.deadLetter('coordinator'), topics.deadLetter('ngdb')];
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = new Map<string, number>();
    try {
      for (const topic of dlqs) {
        const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
        ends.set(
          topic,
          offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0),
        );
      }
    } finally {
      await admin.disconnect();
    }
    const result: Record<string, Record<string, number>> = {};
    for (const topic of dlqs) {
      result[topic] = {};
      const total = ends.get(topic) ?? 0;
      if (total === 0) continue;
      const consumer = this.kafka.consumer({ groupId: `faults-dlq-${randomUUID()}` });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let seen = 0;
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen++;
          if (String(message.headers?.['lt-source-topic'] ?? '') !== this.sourceTopic) return;
          const code = String(message.headers?.['lt-error-code'] ?? '(none)');
          result[topic]![code] = (result[topic]![code] ?? 0) + 1;
        },
      });
      const deadline = Date.now() + 30_000;
      while (seen < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      await consumer.disconnect();
    }
    return result;
  }

  /** Everything a row reports, after the workload and its fault. */
  async report(workload: Workload, recoverSeconds: number, extraEvents = 0): Promise<RunReport> {
    const services = [...this.services.values()];
    return {
      events: workload.events + extraEvents,
      ...(await this.compare(workload, extraEvents)),
      deadLetters: await this.deadLetters(),
      recoverSeconds,
      servicesRunning: services.every((service) => service.running),
      sourceRecords: await this.sourceRecords(),
      crashes: services.reduce((sum, service) => sum + service.crashes, 0),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.services.values()].map((service) => service.kill('SIGTERM')));
    await this.publisher?.close().catch(() => undefined);
    await this.agentPool?.end().catch(() => undefined);
    await this.pool?.end().catch(() => undefined);
  }
}
