/**
 * Topic and subject names are data: this is the only module that builds them (DESIGN.md §3).
 * Dataset ids look like `population.citizen`; agreement ids are `[a-z0-9-]+`; stages are DLQ stage names.
 */
const DATASET_ID = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;
const SIMPLE_ID = /^[a-z0-9][a-z0-9-]*$/;
const AGENCY_CODE = /^[A-Z][A-Z0-9-]*$/;

function check(kind: string, value: string, pattern: RegExp): string {
  if (!pattern.test(value))
    throw new Error(`invalid ${kind} "${value}" for a topic name (expected ${pattern})`);
  return value;
}

export const topics = {
  /** Change history of one dataset, written only by its owner agency. */
  source: (datasetId: string) => `lt.src.${check('dataset id', datasetId, DATASET_ID)}`,
  /** Derived stream of one sharing agreement, written only by the coordinator. */
  share: (agreementId: string) => `lt.share.${check('agreement id', agreementId, SIMPLE_ID)}`,
  /**
   * Rejected records of one pipeline stage, original bytes unchanged: `lt.dlq.<stage>` for a platform stage
   * (coordinator, NGDB), `lt.dlq.<stage>.<agency>` for what belongs to one agency (its ingest, its sinks).
   */
  deadLetter: (stage: string, agency?: string) =>
    agency === undefined
      ? `lt.dlq.${check('stage', stage, SIMPLE_ID)}`
      : `lt.dlq.${check('stage', stage, SIMPLE_ID)}.${check('agency code', agency, AGENCY_CODE).toLowerCase()}`,
  /**
   * Dead letters an operator sends back to one platform stage (`lienthong dlq redrive`): the stage reads it
   * beside its own input and treats each record as the source record its `lt-source-*` headers name.
   */
  redrive: (stage: string) => `lt.redrive.${check('stage', stage, SIMPLE_ID)}`,
} as const;

/** What a topic name says, read back: the inverse of {@link topics}, so nobody slices names by hand. */
export type TopicKind =
  | { kind: 'source'; dataset: string }
  | { kind: 'share'; agreement: string }
  | { kind: 'dead-letter'; stage: string; agency?: string }
  | { kind: 'redrive'; stage: string }
  | { kind: 'other' };

const SOURCE_TOPIC = /^lt\.src\.([a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)+)$/;
const SHARE_TOPIC = /^lt\.share\.([a-z0-9][a-z0-9-]*)$/;
const DEAD_LETTER_TOPIC = /^lt\.dlq\.([a-z0-9][a-z0-9-]*)(?:\.([a-z][a-z0-9-]*))?$/;
const REDRIVE_TOPIC = /^lt\.redrive\.([a-z0-9][a-z0-9-]*)$/;

/** The kind of a topic name and the ids inside it; an agency comes back in capitals (agency codes are). */
export function topicKind(topic: string): TopicKind {
  const source = SOURCE_TOPIC.exec(topic);
  if (source) return { kind: 'source', dataset: source[1]! };
  const share = SHARE_TOPIC.exec(topic);
  if (share) return { kind: 'share', agreement: share[1]! };
  const deadLetter = DEAD_LETTER_TOPIC.exec(topic);
  if (deadLetter)
    return deadLetter[2] === undefined
      ? { kind: 'dead-letter', stage: deadLetter[1]! }
      : { kind: 'dead-letter', stage: deadLetter[1]!, agency: deadLetter[2].toUpperCase() };
  const redrive = REDRIVE_TOPIC.exec(topic);
  if (redrive) return { kind: 'redrive', stage: redrive[1]! };
  return { kind: 'other' };
}

/**
 * What a topic this module named is about: the dataset of `lt.src.<dataset>`, the agreement of
 * `lt.share.<agreement>`, '' for the other (and for any other topic). Metrics label their series with it.
 */
export function streamOfTopic(topic: string): { dataset: string; agreement: string } {
  const kind = topicKind(topic);
  return {
    dataset: kind.kind === 'source' ? kind.dataset : '',
    agreement: kind.kind === 'share' ? kind.agreement : '',
  };
}

/** Confluent TopicNameStrategy subjects; always passed explicitly to the registry client. */
export const subjects = {
  value: (topic: string) => `${topic}-value`,
  key: (topic: string) => `${topic}-key`,
} as const;

/** Consumer group ids: one group per job, so replaying one job never disturbs another. */
export const consumerGroups = {
  coordinator: 'lt.coordinator',
  /**
   * The backfill of one agreement at one revision (its history up to the end offsets captured when it appeared),
   * on a consumer of its own beside the coordinator's live one; inside the coordinator's `lt.coordinator` prefix.
   */
  coordinatorBackfill: (agreementId: string, revision: number) =>
    `lt.coordinator.backfill.${check('agreement id', agreementId, SIMPLE_ID)}.${Math.trunc(revision)}`,
  ngdb: 'lt.ngdb',
  /** The shadow copy `lienthong rebuild --sink ngdb` builds (inside lt-ngdb's `lt.ngdb` group prefix). */
  ngdbRebuild: 'lt.ngdb.rebuild',
  sink: (agency: string) => `lt.sink.${agency.toLowerCase()}`,
  /** The subscriber sink of one agreement in an Agent Node. */
  subscription: (agency: string, agreementId: string) =>
    `lt.sink.${agency.toLowerCase()}.${check('agreement id', agreementId, SIMPLE_ID)}`,
  /** A one-off reader of an operator's command (reading dead letters): never commits, so it leaves no position. */
  operatorReader: (id: string) => `lt.operator.${check('reader id', id, SIMPLE_ID)}`,
} as const;

/** The prefix of every {@link consumerGroups.operatorReader} group (what the operator's ACL grants). */
export const OPERATOR_GROUP_PREFIX = 'lt.operator.';
