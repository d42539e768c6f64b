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
} as const;

/** Confluent TopicNameStrategy subjects; always passed explicitly to the registry client. */
export const subjects = {
  value: (topic: string) => `${topic}-value`,
  key: (topic: string) => `${topic}-key`,
} as const;

/** Consumer group ids: one group per job, so replaying one job never disturbs another. */
export const consumerGroups = {
  coordinator: 'lt.coordinator',
  ngdb: 'lt.ngdb',
  /** The shadow copy `lienthong rebuild --sink ngdb` builds (inside lt-ngdb's `lt.ngdb` group prefix). */
  ngdbRebuild: 'lt.ngdb.rebuild',
  sink: (agency: string) => `lt.sink.${agency.toLowerCase()}`,
  /** The subscriber sink of one agreement in an Agent Node. */
  subscription: (agency: string, agreementId: string) =>
    `lt.sink.${agency.toLowerCase()}.${check('agreement id', agreementId, SIMPLE_ID)}`,
} as const;
