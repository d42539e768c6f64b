import type { Kafka } from 'kafkajs';
import { toLtError, type LtError } from '../../infra/errors.ts';
import { kafkaFailure } from '../../infra/kafka/failures.ts';
import { topics as topicNames } from '../../infra/kafka/topics.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { isActive, type Agreement, type Degradation } from '../agreements/model.ts';
import { AgreementStore } from '../agreements/store.ts';
import { operatorAuditTrail } from '../audit/operator-audit.ts';
import { actionStatus, partitionLag, unfinishedActions } from './derive.ts';
import type {
  AgreementState,
  DeadLetterStatus,
  GroupStatus,
  OperationsStatus,
  PlatformStatus,
  ServiceStatus,
} from './model.ts';

/** Prefixes of the platform's own names (infra/kafka/topics.ts builds every one of them). */
const PLATFORM_PREFIX = 'lt.';
const DEAD_LETTER_PREFIX = 'lt.dlq.';

export interface StatusSources {
  dictionary: Dictionary;
  /** The cluster, read as `principal` (lt-operator: DESCRIBE on `lt.` topics and groups is enough). */
  kafka: { client: Kafka; brokers: string[]; principal: string };
  /** The platform schema (agreements, operator audit), or why it could not be opened. */
  platform: { pool: Pool; url: string } | { failure: LtError; url: string };
  /** How many recent operator actions to list. Default 10. */
  recentActions?: number;
  now?: Date;
}

interface KafkaPicture {
  records: Map<string, number>;
  groups: GroupStatus[];
  deadLetters: DeadLetterStatus[];
}

/** One admin connection: every `lt.*` topic's offsets, every `lt.*` group's state and committed offsets. */
async function readKafka(kafka: Kafka): Promise<KafkaPicture> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = (await admin.listTopics()).filter((topic) => topic.startsWith(PLATFORM_PREFIX)).sort();
    const offsets = new Map(
      await Promise.all(
        existing.map(async (topic) => [topic, await admin.fetchTopicOffsets(topic)] as const),
      ),
    );
    const records = new Map(
      [...offsets].map(([topic, partitions]) => [
        topic,
        partitions.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0),
      ]),
    );
    const groupIds = (await admin.listGroups()).groups
      .map(({ groupId }) => groupId)
      .filter((groupId) => groupId.startsWith(PLATFORM_PREFIX))
      .sort();
    const described = groupIds.length > 0 ? (await admin.describeGroups(groupIds)).groups : [];
    const groups = await Promise.all(
      groupIds.map(async (id): Promise<GroupStatus> => {
        const description = described.find((group) => group.groupId === id);
        const committed = await admin.fetchOffsets({ groupId: id });
        const groupTopics = committed
          .filter(({ topic }) => offsets.has(topic))
          .map(({ topic, partitions }) => {
            const lags = [...offsets.get(topic)!]
              .sort((a, b) => a.partition - b.partition)
              .map(({ partition, low, high }) =>
                partitionLag({
                  partition,
                  committed: Number(
                    partitions.find((entry) => entry.partition === partition)?.offset ?? '-1',
                  ),
                  logStart: Number(low),
                  logEnd: Number(high),
                }),
              );
            return { topic, lag: lags.reduce((sum, { lag }) => sum + lag, 0), partitions: lags };
          })
          .sort((a, b) => a.topic.localeCompare(b.topic));
        return {
          id,
          state: description?.state ?? 'Unknown',
          members: description?.members.length ?? 0,
          lag: groupTopics.reduce((sum, { lag }) => sum + lag, 0),
          topics: groupTopics,
        };
      }),
    );
    const deadLetters = existing
      .filter((topic) => topic.startsWith(DEAD_LETTER_PREFIX))
      .map((topic) => ({ topic, records: records.get(topic) ?? 0 }));
    return { records, groups, deadLetters };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function agreementState(
  agreement: Agreement,
  degradations: Map<string, Degradation>,
  now: Date,
): AgreementState {
  const degraded = degradations.get(agreement.id);
  return {
    id: agreement.id,
    subscriber: agreement.subscriber,
    dataset: agreement.dataset,
    status: agreement.status,
    active: isActive(agreement, now),
    statusReason: agreement.statusReason,
    revision: agreement.revision,
    validTo: agreement.validTo?.toISOString() ?? null,
    degraded: degraded
      ? {
          code: degraded.code,
          reason: degraded.reason,
          since: degraded.since.toISOString(),
          attempts: degraded.attempts,
          nextAttemptAt: degraded.nextAttemptAt.toISOString(),
        }
      : null,
  };
}

interface PlatformPicture {
  agreements: AgreementState[];
  operations: OperationsStatus;
}

/** The agreements with their degradation, and the operator actions, from the platform schema. */
async function readPlatform(
  pool: Pool,
  dictionary: Dictionary,
  recentActions: number,
  now: Date,
): Promise<PlatformPicture> {
  const store = new AgreementStore(pool, dictionary);
  const [agreements, degradations, trail] = await Promise.all([
    store.list(),
    store.degradations(),
    // deep enough that a replay planned hours ago still finds whether it finished
    operatorAuditTrail(pool, { limit: 1000 }),
  ]);
  return {
    agreements: agreements.map((agreement) => agreementState(agreement, degradations, now)),
    operations: {
      inProgress: unfinishedActions(trail).map(actionStatus),
      recent: trail.slice(0, recentActions).map(actionStatus),
    },
  };
}

function reachable(at: string): ServiceStatus {
  return { at, reachable: true, problem: null };
}

function unreachable(at: string, error: LtError): ServiceStatus {
  return {
    at,
    reachable: false,
    problem: { code: error.code, message: error.message, hint: error.hint ?? null },
  };
}

/**
 * The platform at a glance ({@link PlatformStatus}): agencies and datasets from the dictionary; agreements and
 * operator actions from PostgreSQL; record counts, consumer-group lag and dead letters from Kafka. Each service
 * is read on its own: one that cannot be read leaves its sections null and says why in `services`, the others
 * are still reported. Reads only; changes nothing.
 */
export async function gatherStatus(sources: StatusSources): Promise<PlatformStatus> {
  const now = sources.now ?? new Date();
  const { dictionary } = sources;
  const [kafka, platform] = await Promise.all([
    readKafka(sources.kafka.client).then(
      (picture) => ({ picture, service: reachable(sources.kafka.brokers.join(',')) }),
      (error: unknown) => ({
        picture: null,
        service: unreachable(
          sources.kafka.brokers.join(','),
          kafkaFailure(error, { brokers: sources.kafka.brokers, principal: sources.kafka.principal }),
        ),
      }),
    ),
    'failure' in sources.platform
      ? { picture: null, service: unreachable(sources.platform.url, sources.platform.failure) }
      : readPlatform(sources.platform.pool, dictionary, sources.recentActions ?? 10, now).then(
          (picture) => ({ picture, service: reachable(sources.platform.url) }),
          (error: unknown) => ({
            picture: null,
            service: unreachable(sources.platform.url, toLtError(error)),
          }),
        ),
  ]);
  const datasets = [...dictionary.datasets.values()].sort((a, b) => a.id.localeCompare(b.id));
  const agreements = platform.picture?.agreements ?? null;
  return {
    at: now.toISOString(),
    services: { kafka: kafka.service, postgres: platform.service },
    agencies: [...dictionary.agencies.values()]
      .sort((a, b) => a.code.localeCompare(b.code))
      .map((agency) => ({
        code: agency.code,
        name: agency.name,
        kind: agency.kind,
        owns: datasets.filter((dataset) => dataset.owner === agency.code).map((dataset) => dataset.id),
        activeAgreements: (agreements ?? []).filter(
          (agreement) => agreement.subscriber === agency.code && agreement.active,
        ).length,
      })),
    datasets: datasets.map((dataset) => {
      const topic = topicNames.source(dataset.id);
      return {
        id: dataset.id,
        owner: dataset.owner,
        topic,
        records: kafka.picture?.records.get(topic) ?? null,
      };
    }),
    agreements,
    groups: kafka.picture?.groups ?? null,
    deadLetters: kafka.picture?.deadLetters ?? null,
    operations: platform.picture?.operations ?? null,
  };
}
