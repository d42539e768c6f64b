import type { ErrorCode } from '../../infra/errors.ts';

/**
 * The platform at a glance, as `lienthong status` prints it and `--json` (and later the ops console) gives it:
 * plain data only — strings, numbers, booleans, arrays, null — so `JSON.parse(JSON.stringify(status))` is the
 * same object. Times are ISO 8601 strings. A section whose service could not be read is null, and
 * `services` says why.
 */
export interface PlatformStatus {
  /** When the status was read. */
  at: string;
  services: { kafka: ServiceStatus; postgres: ServiceStatus };
  /** From the dictionary: always there. */
  agencies: AgencyStatus[];
  /** From the dictionary, with record counts from Kafka (null when Kafka could not be read). */
  datasets: DatasetStatus[];
  /** From PostgreSQL; null when it could not be read. */
  agreements: AgreementState[] | null;
  /** The platform's consumer groups (`lt.*`) with their lag; null when Kafka could not be read. */
  groups: GroupStatus[] | null;
  /** Every dead-letter topic (`lt.dlq.*`) and how many records it holds; null when Kafka could not be read. */
  deadLetters: DeadLetterStatus[] | null;
  /** From the operator audit trail; null when PostgreSQL could not be read. */
  operations: OperationsStatus | null;
}

export interface ServiceStatus {
  /** The Kafka brokers, or the PostgreSQL URL without its password. */
  at: string;
  reachable: boolean;
  /** Why it could not be read: an LtError's code, message and what to do. */
  problem: { code: ErrorCode; message: string; hint: string | null } | null;
}

export interface AgencyStatus {
  code: string;
  name: { vi: string; en: string };
  kind: string;
  /** The datasets it is the single source of truth for. */
  owns: string[];
  /** Its agreements that are active now (approved and within their validity), as subscriber. */
  activeAgreements: number;
}

export interface DatasetStatus {
  id: string;
  owner: string;
  topic: string;
  /** Records retained in the source topic (log end − log start, summed); null when the topic does not exist
   * or Kafka could not be read. */
  records: number | null;
}

export interface AgreementState {
  id: string;
  subscriber: string;
  dataset: string;
  /** requested | approved | refused | suspended | revoked | expired */
  status: string;
  /** Approved and within its validity window: the coordinator shares it. */
  active: boolean;
  statusReason: string | null;
  revision: number;
  validTo: string | null;
  /** Set when the coordinator reports it cannot derive the stream. */
  degraded: {
    code: string;
    reason: string;
    since: string;
    attempts: number;
    nextAttemptAt: string;
  } | null;
}

export interface GroupPartitionLag {
  partition: number;
  /** The group's committed offset; null when it never committed on this partition. */
  committed: number | null;
  logStart: number;
  logEnd: number;
  /** Records not yet committed: log end − committed (or − log start). */
  lag: number;
  /** The committed offset fell below the log start: records were deleted unread, the copy must resynchronize. */
  belowLogStart: boolean;
}

export interface GroupStatus {
  id: string;
  /** Kafka's group state: Stable, Empty (no member running), PreparingRebalance, CompletingRebalance, Dead. */
  state: string;
  members: number;
  /** Summed over every topic and partition. */
  lag: number;
  topics: { topic: string; lag: number; partitions: GroupPartitionLag[] }[];
}

export interface DeadLetterStatus {
  topic: string;
  /** Records retained (log end − log start, summed over partitions). */
  records: number;
}

export interface OperatorActionStatus {
  seq: number;
  at: string;
  principal: string;
  action: string;
  target: string;
  outcome: 'planned' | 'done' | 'refused' | 'failed';
  detail: Record<string, unknown>;
}

export interface OperationsStatus {
  /** Replays, rebuilds, … planned with no outcome recorded after them: running, or stopped without saying so. */
  inProgress: OperatorActionStatus[];
  /** The latest operator actions, newest first. */
  recent: OperatorActionStatus[];
}
