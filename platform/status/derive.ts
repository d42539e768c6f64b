import type { OperatorAuditEntry } from '../audit/operator-audit.ts';
import type { GroupPartitionLag, OperatorActionStatus } from './model.ts';

/** A partition's positions as Kafka reports them; `committed` is -1 when the group never committed there. */
export interface PartitionPositions {
  partition: number;
  committed: number;
  logStart: number;
  logEnd: number;
}

/**
 * What a group has not read of one partition: from its committed offset (or the log start, when it never
 * committed there) to the log end. A committed offset below the log start means the records in between were
 * deleted unread: the group must resynchronize its copy (DESIGN.md §3), so it is flagged.
 */
export function partitionLag({
  partition,
  committed,
  logStart,
  logEnd,
}: PartitionPositions): GroupPartitionLag {
  const from = committed < 0 ? logStart : committed;
  return {
    partition,
    committed: committed < 0 ? null : committed,
    logStart,
    logEnd,
    lag: Math.max(0, logEnd - from),
    belowLogStart: committed >= 0 && committed < logStart,
  };
}

/** The audit entry as plain data (an ISO time, no Date), for the status object. */
export function actionStatus(entry: OperatorAuditEntry): OperatorActionStatus {
  return {
    seq: entry.seq,
    at: entry.at.toISOString(),
    principal: entry.principal,
    action: entry.action,
    target: entry.target,
    outcome: entry.outcome,
    detail: entry.detail,
  };
}

/**
 * The operator actions still in progress: the latest entry of each action and target (a replay of one group, a
 * rebuild of one sink) that is `planned`, i.e. no `done`, `failed` or `refused` was recorded after it. Such an
 * entry is running, or stopped without recording its outcome. `entries` may come in any order; oldest first out.
 */
export function unfinishedActions(entries: readonly OperatorAuditEntry[]): OperatorAuditEntry[] {
  const latest = new Map<string, OperatorAuditEntry>();
  for (const entry of entries) {
    const key = JSON.stringify([entry.action, entry.target]);
    const seen = latest.get(key);
    if (!seen || seen.seq < entry.seq) latest.set(key, entry);
  }
  return [...latest.values()].filter((entry) => entry.outcome === 'planned').sort((a, b) => a.seq - b.seq);
}
