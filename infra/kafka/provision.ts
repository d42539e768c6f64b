import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import type { TopicSpec } from './admin.ts';
import { topics } from './topics.ts';

/**
 * Topic provisioning (DESIGN.md §3): every topic gets explicit settings — partitions, retention, replication
 * factor, `min.insync.replicas` — never the broker's defaults. The spec builders below are the one place
 * those settings are decided; `lienthong topics sync` and the services at start reconcile the broker with
 * them through {@link reconcileTopics}.
 */

// kafkajs is CommonJS, and Node's ESM loader does not see this export by name (vitest's transform would)
const { ConfigResourceTypes } = kafkajs;

const DAY_MS = 86_400_000;

/** Kept forever: what every copy is rebuilt from (source topics) or resumed from (share topics). */
export const KEPT = '-1';

/** How long a dead letter is kept unless configured: long enough to investigate and redrive. */
export const DEFAULT_DEAD_LETTER_RETENTION_DAYS = 30;

/** `retention` of a dataset in the dictionary (`unlimited` or `<days>d`) as `retention.ms`. */
export function retentionMs(retention: string): string {
  if (retention === 'unlimited') return KEPT;
  const days = /^(\d+)d$/.exec(retention)?.[1];
  if (days === undefined) throw new Error(`retention "${retention}" is neither "unlimited" nor "<days>d"`);
  return String(Number(days) * DAY_MS);
}

/** `lt.src.<dataset>`: retention from the dictionary (default unlimited), compacting nothing. */
export function sourceTopicSpec(dataset: { id: string; retention: string }, partitions: number): TopicSpec {
  return {
    topic: topics.source(dataset.id),
    partitions,
    config: { 'retention.ms': retentionMs(dataset.retention), 'cleanup.policy': 'delete' },
  };
}

/** `lt.share.<agreement>`: as many partitions as its source topic, kept (a subscriber may be offline long). */
export function shareTopicSpec(agreementId: string, partitions: number): TopicSpec {
  return {
    topic: topics.share(agreementId),
    partitions,
    config: { 'retention.ms': KEPT, 'cleanup.policy': 'delete' },
  };
}

/**
 * `lt.dlq.<stage>` of a platform stage, or `lt.dlq.<stage>.<agency>` of one agency's ingest or sinks: one
 * partition, kept `retentionDays` (dead letters hold whole records, so they must not outlive their purpose).
 */
export function deadLetterTopicSpec(
  stage: string,
  agency: string | undefined,
  retentionDays: number = DEFAULT_DEAD_LETTER_RETENTION_DAYS,
): TopicSpec {
  return {
    topic: topics.deadLetter(stage, agency),
    partitions: 1,
    config: { 'retention.ms': String(retentionDays * DAY_MS), 'cleanup.policy': 'delete' },
  };
}

/**
 * `lt.redrive.<stage>`: dead letters an operator sends back to a platform stage; one partition, kept as long as
 * dead letters (a redrive is read within minutes; longer only while the stage is down).
 */
export function redriveTopicSpec(
  stage: string,
  retentionDays: number = DEFAULT_DEAD_LETTER_RETENTION_DAYS,
): TopicSpec {
  return {
    topic: topics.redrive(stage),
    partitions: 1,
    config: { 'retention.ms': String(retentionDays * DAY_MS), 'cleanup.policy': 'delete' },
  };
}

/** How this cluster replicates: factor 3 and `min.insync.replicas` 2 on three or more brokers. */
export interface Durability {
  brokers: number;
  replicationFactor: number;
  minInsyncReplicas: number;
}

export function durabilityFor(brokers: number): Durability {
  const replicationFactor = Math.min(3, Math.max(1, brokers));
  return { brokers, replicationFactor, minInsyncReplicas: replicationFactor >= 3 ? 2 : 1 };
}

/** One difference between the broker and the desired state, and whether it is (or would be) applied. */
export interface TopicChange {
  topic: string;
  action: 'create' | 'add-partitions' | 'set-config' | 'cannot-apply';
  detail: string;
}

/**
 * Every topic setting that is desired, durability included; `min.insync.replicas` never above what the
 * topic's replicas allow (a topic made on one broker keeps accepting writes until it is reassigned).
 */
function desiredConfig(spec: TopicSpec, durability: Durability, replicas?: number): Record<string, string> {
  const minInsync =
    replicas === undefined || replicas >= durability.replicationFactor
      ? durability.minInsyncReplicas
      : Math.max(1, Math.min(durability.minInsyncReplicas, replicas - 1));
  return { ...spec.config, 'min.insync.replicas': String(minInsync) };
}

/**
 * Brings the broker to the desired topics: creates the missing ones, adds partitions, sets the configs we
 * own (the AlterConfigs request replaces a topic's dynamic configs with the desired set). Never removes a
 * topic or a partition, and never changes a replication factor (that is a partition reassignment, an
 * operator's decision): those differences come back as `cannot-apply`. With `dryRun`, only reports.
 * Idempotent: a second run returns no change. Concurrent runs are safe (an existing topic is not an error).
 */
export async function reconcileTopics(
  kafka: Kafka,
  specs: readonly TopicSpec[],
  options: { dryRun?: boolean } = {},
): Promise<{ changes: TopicChange[]; durability: Durability }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const durability = durabilityFor((await admin.describeCluster()).brokers.length);
    const changes: TopicChange[] = [];
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((spec) => !existing.has(spec.topic));
    for (const spec of missing)
      changes.push({
        topic: spec.topic,
        action: 'create',
        detail: `${spec.partitions} partitions, replication ${durability.replicationFactor}, ${describe(desiredConfig(spec, durability))}`,
      });
    if (!options.dryRun && missing.length > 0) await createMissing(admin, missing, durability);
    const present = specs.filter((spec) => existing.has(spec.topic));
    if (present.length > 0) changes.push(...(await alterPresent(admin, present, durability, options)));
    return { changes, durability };
  } finally {
    await admin.disconnect();
  }
}

async function createMissing(admin: Admin, specs: readonly TopicSpec[], durability: Durability) {
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: specs.map((spec) => ({
        topic: spec.topic,
        numPartitions: spec.partitions,
        replicationFactor: durability.replicationFactor,
        configEntries: Object.entries(desiredConfig(spec, durability)).map(([name, value]) => ({
          name,
          value,
        })),
      })),
    });
  } catch (error) {
    // another process may have created some of them since our listing; fine if all exist now
    const now = new Set(await admin.listTopics());
    if (specs.some((spec) => !now.has(spec.topic))) throw error;
  }
}

async function alterPresent(
  admin: Admin,
  specs: readonly TopicSpec[],
  durability: Durability,
  options: { dryRun?: boolean },
): Promise<TopicChange[]> {
  const changes: TopicChange[] = [];
  const metadata = await admin.fetchTopicMetadata({ topics: specs.map((spec) => spec.topic) });
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: specs.map((spec) => ({ type: ConfigResourceTypes.TOPIC, name: spec.topic })),
  });
  const configs = new Map(
    described.resources.map((resource) => [
      resource.resourceName,
      new Map(resource.configEntries.map((entry) => [entry.configName, entry.configValue])),
    ]),
  );
  const grow: { topic: string; count: number }[] = [];
  const alter: TopicSpec[] = [];
  const desiredById = new Map<string, Record<string, string>>();
  for (const spec of specs) {
    const partitions = metadata.topics.find((topic) => topic.name === spec.topic)?.partitions ?? [];
    if (partitions.length < spec.partitions) {
      grow.push({ topic: spec.topic, count: spec.partitions });
      changes.push({
        topic: spec.topic,
        action: 'add-partitions',
        detail: `${partitions.length} → ${spec.partitions} partitions`,
      });
    }
    const replicas = Math.min(...partitions.map((partition) => partition.replicas.length));
    if (partitions.length > 0 && replicas < durability.replicationFactor)
      changes.push({
        topic: spec.topic,
        action: 'cannot-apply',
        detail: `replication factor ${replicas}, desired ${durability.replicationFactor}: reassign its partitions (kafka-reassign-partitions) to raise it`,
      });
    const current = configs.get(spec.topic) ?? new Map<string, string>();
    const desired = desiredConfig(spec, durability, partitions.length > 0 ? replicas : undefined);
    desiredById.set(spec.topic, desired);
    const differing = Object.entries(desired).filter(([name, value]) => current.get(name) !== value);
    if (differing.length > 0) {
      alter.push(spec);
      changes.push({
        topic: spec.topic,
        action: 'set-config',
        detail: differing
          .map(([name, value]) => `${name} ${current.get(name) ?? '(unset)'} → ${value}`)
          .join(', '),
      });
    }
  }
  if (options.dryRun) return changes;
  if (grow.length > 0) await admin.createPartitions({ topicPartitions: grow });
  if (alter.length > 0)
    await admin.alterConfigs({
      validateOnly: false,
      resources: alter.map((spec) => ({
        type: ConfigResourceTypes.TOPIC,
        name: spec.topic,
        configEntries: Object.entries(desiredById.get(spec.topic) ?? {}).map(([name, value]) => ({
          name,
          value,
        })),
      })),
    });
  return changes;
}

function describe(config: Record<string, string>): string {
  return Object.entries(config)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}
