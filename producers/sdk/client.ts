import { readEnv } from '../../infra/config/options.ts';
import { createKafka, type KafkaSecurity } from '../../infra/kafka/client.ts';
import { kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { createLogger, type Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import type { DatasetId, DatasetRecords } from '../../schemas/generated/datasets.ts';
import { loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../schemas/registry/client.ts';
import {
  Publisher,
  VersionLedger,
  type BatchOptions,
  type BatchResult,
  type Change,
  type PublisherOptions,
  type RecordOutcome,
} from '../publisher/index.ts';

export interface SdkOptions {
  /** The agency this program publishes for; it may publish only the datasets it owns. */
  agency: string;
  /** Kafka bootstrap servers. Default: KAFKA_BROKERS. */
  brokers?: string[];
  /**
   * TLS + SCRAM as the agency's principal. Default: the credential of `agency.<agency>` under LIENTHONG_HOME
   * (or KAFKA_PRINCIPAL's); plaintext only with LIENTHONG_INSECURE=1.
   */
  security?: KafkaSecurity;
  /** The schema registry. Default: SCHEMA_REGISTRY_URL. */
  registryUrl?: string;
  /** The agency's own PostgreSQL, where the last published version per key is kept. Default: DATABASE_URL. */
  databaseUrl?: string;
  /** PostgreSQL schema for the Agent Node's tables. Default `lt_agent_<agency>`. */
  databaseSchema?: string;
  /** Default: the dictionary shipped in schemas/dictionary. */
  dictionary?: Dictionary;
  /** Publish-path settings: record size limit, broker wait, compression (see PublisherOptions). */
  publisher?: Partial<Pick<PublisherOptions, 'maxRecordBytes' | 'sendTimeoutMs' | 'compression'>>;
  log?: Logger;
}

/**
 * The TypeScript SDK of an Agent Node: `publish(dataset, change)` and `publishBatch(dataset, changes)`,
 * typed from the Shared Data Dictionary (`schemas/generated/datasets.ts`), over the same publish path as
 * HTTP ingest and the outbox relay.
 *
 * ```ts
 * const sdk = await LienthongSdk.connect({ agency: 'BCA' });
 * await sdk.publish('population.citizen', { op: 'UPDATE', version: 2, after: citizen });
 * await sdk.close();
 * ```
 */
export class LienthongSdk {
  private readonly publisher: Publisher;
  private readonly pool: Pool;

  private constructor(publisher: Publisher, pool: Pool) {
    this.publisher = publisher;
    this.pool = pool;
  }

  static async connect(options: SdkOptions): Promise<LienthongSdk> {
    const env = readEnv();
    const log = options.log ?? createLogger(env.LOG_LEVEL);
    const brokers = options.brokers ?? env.KAFKA_BROKERS;
    const registryUrl = options.registryUrl ?? env.SCHEMA_REGISTRY_URL;
    if (!brokers || !registryUrl) {
      throw new Error(
        'the SDK needs Kafka brokers and a schema registry: pass brokers/registryUrl or set KAFKA_BROKERS and SCHEMA_REGISTRY_URL',
      );
    }
    const security = options.security ?? kafkaSecurityFor(env, principals.agency(options.agency), log);
    const schema =
      options.databaseSchema ?? `lt_agent_${options.agency.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
    const pool = await createPool({ url: options.databaseUrl ?? env.DATABASE_URL, schema });
    await migrate(pool, 'agent');
    const publisher = new Publisher({
      kafka: createKafka({
        brokers,
        clientId: `lienthong-sdk-${options.agency.toLowerCase()}`,
        log,
        security,
      }),
      // the registry knows the agency by the same credential
      registry: createRegistryClient({
        url: registryUrl,
        ...(security
          ? { auth: { username: security.username, password: security.password }, ca: security.ca }
          : {}),
      }),
      dictionary: options.dictionary ?? loadDictionary(),
      agency: options.agency,
      ledger: new VersionLedger(pool),
      log,
      ...options.publisher,
    });
    await publisher.connect();
    return new LienthongSdk(publisher, pool);
  }

  /** Publishes one change; resolves once the broker acknowledged it, or throws the refusal (an LtError). */
  async publish<D extends DatasetId>(
    dataset: D,
    change: Change<DatasetRecords[D]>,
  ): Promise<RecordOutcome & { status: 'accepted' }> {
    return this.publisher.publish(dataset, change as Change);
  }

  /** Publishes changes in order; all-or-nothing unless `{ partial: true }`. Per-record outcomes in the result. */
  async publishBatch<D extends DatasetId>(
    dataset: D,
    changes: Change<DatasetRecords[D]>[],
    options?: BatchOptions,
  ): Promise<BatchResult> {
    return this.publisher.publishBatch(dataset, changes, options);
  }

  async close(): Promise<void> {
    await this.publisher.close();
    await this.pool.end();
  }
}
