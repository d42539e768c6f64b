import type { Kafka } from 'kafkajs';
import type { TopicSpec } from '../../infra/kafka/admin.ts';
import {
  deadLetterTopicSpec,
  reconcileTopics,
  redriveTopicSpec,
  shareTopicSpec,
  sourceTopicSpec,
  type Durability,
  type TopicChange,
} from '../../infra/kafka/provision.ts';
import { topics } from '../../infra/kafka/topics.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { Agreement } from '../agreements/model.ts';

/** Partitions of a new source topic: the most consumers that can share one dataset's stream. */
export const DEFAULT_SOURCE_PARTITIONS = 6;

/** The platform's own stages, each with one `lt.dlq.<stage>`. */
export const PLATFORM_DEAD_LETTER_STAGES = ['coordinator', 'ngdb'] as const;

/**
 * The platform stages an operator redrives through `lt.redrive.<stage>` (the NGDB sink reads it beside the
 * source topics). The coordinator is redriven by re-deriving the agreements concerned (AgreementStore.resync),
 * and an agency's stages belong to its Agent Node (docs/dead-letters.md says why).
 */
export const REDRIVE_TOPIC_STAGES = ['ngdb'] as const;

/** The stages that belong to one agency, each with `lt.dlq.<stage>.<agency>` per agency. */
export const AGENCY_DEAD_LETTER_STAGES = ['ingest', 'sink'] as const;

export interface TopicPlanInput {
  dictionary: Dictionary;
  agreements: readonly Agreement[];
  /** Partitions of the topics that exist now, by name: a source topic never changes its partition count. */
  existing: ReadonlyMap<string, number>;
  deadLetterRetentionDays?: number;
  sourcePartitions?: number;
}

/**
 * Every topic the platform needs, derived from the dictionary and the agreements (DESIGN.md §3):
 * - a source topic per dataset, retention from the dictionary; an existing one keeps its partitions (adding
 *   partitions would move keys and break per-key order);
 * - a share topic per agreement that was ever approved (an ended one still carries its end notice), kept,
 *   with its source topic's partitions;
 * - `lt.dlq.<stage>` per platform stage and `lt.dlq.<stage>.<agency>` per agency, bounded retention;
 * - `lt.redrive.<stage>` per stage an operator redrives through a topic, bounded the same.
 */
export function desiredTopics(input: TopicPlanInput): TopicSpec[] {
  const sourcePartitions = (datasetId: string): number =>
    input.existing.get(topics.source(datasetId)) ?? input.sourcePartitions ?? DEFAULT_SOURCE_PARTITIONS;
  const specs: TopicSpec[] = [];
  for (const dataset of input.dictionary.datasets.values())
    specs.push(sourceTopicSpec(dataset, sourcePartitions(dataset.id)));
  for (const agreement of input.agreements) {
    if (agreement.status === 'requested' || agreement.status === 'refused') continue;
    if (!agreement.methods.includes('sync')) continue;
    if (!input.dictionary.datasets.has(agreement.dataset)) continue;
    specs.push(shareTopicSpec(agreement.id, sourcePartitions(agreement.dataset)));
  }
  return [
    ...specs,
    ...deadLetterTopics(input.dictionary, input.deadLetterRetentionDays),
    ...REDRIVE_TOPIC_STAGES.map((stage) => redriveTopicSpec(stage, input.deadLetterRetentionDays)),
  ];
}

/** `lt.dlq.<stage>` per platform stage and `lt.dlq.<stage>.<agency>` per agency of the dictionary. */
export function deadLetterTopics(dictionary: Dictionary, retentionDays?: number): TopicSpec[] {
  return [
    ...PLATFORM_DEAD_LETTER_STAGES.map((stage) => deadLetterTopicSpec(stage, undefined, retentionDays)),
    ...[...dictionary.agencies.keys()].flatMap((agency) =>
      AGENCY_DEAD_LETTER_STAGES.map((stage) => deadLetterTopicSpec(stage, agency, retentionDays)),
    ),
  ];
}

/** Partitions of every topic on the broker now, by name. */
async function partitionCounts(kafka: Kafka): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics: found } = await admin.fetchTopicMetadata();
    return new Map(found.map((topic) => [topic.name, topic.partitions.length]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * `lienthong topics sync`: reconciles the broker with {@link desiredTopics} (see `reconcileTopics`); with
 * `dryRun`, only reports the differences.
 */
export async function syncTopics(
  kafka: Kafka,
  input: Omit<TopicPlanInput, 'existing'>,
  options: { dryRun?: boolean } = {},
): Promise<{ changes: TopicChange[]; durability: Durability; topics: number }> {
  const specs = desiredTopics({ ...input, existing: await partitionCounts(kafka) });
  return { ...(await reconcileTopics(kafka, specs, options)), topics: specs.length };
}
