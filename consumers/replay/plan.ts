import { LtError } from '../../infra/errors.ts';

/**
 * Where a replay moves a consumer group, one of four modes (`lienthong replay --to-earliest | --to-datetime |
 * --by-duration | --to-offset`). A duration is resolved to a datetime when the plan is made.
 */
export type ReplayTarget =
  | { mode: 'earliest' }
  | { mode: 'datetime'; at: Date }
  | { mode: 'duration'; ms: number }
  | { mode: 'offset'; topic: string; partition: number; offset: number };

/** What the broker says about one partition a group has read. */
export interface PartitionPosition {
  topic: string;
  partition: number;
  /** The first offset the partition still holds (above 0 once retention or deleteRecords removed records). */
  logStart: number;
  /** The offset the next record will get. */
  logEnd: number;
  /** The group's committed offset; -1 when it has none on this partition. */
  committed: number;
  /** For a datetime: the first offset whose record is at or after it (logEnd when there is none). */
  offsetAtTime?: number;
}

/** One partition's line of the plan. */
export interface PartitionMove {
  topic: string;
  partition: number;
  logStart: number;
  logEnd: number;
  /** The committed offset now; null when the group has none on this partition. */
  committed: number | null;
  /** The committed offset after the replay (equal to `committed` when the partition stays). */
  to: number | null;
  /** How many records the group reads again: committed − to. */
  reread: number;
  /** Why a partition stays where it is, when it does. */
  stays?: string;
}

/**
 * The move of every partition for `target`, or a refusal (an LtError) saying what is wrong and what to do. Pure:
 * the positions come from the broker (`planReplay`). The rules, each a promise to the operator:
 * - a replay only moves a group back: a partition already before the target stays where it is, and an explicit
 *   offset ahead of the committed one is refused (it would skip records the group has not read);
 * - a partition without a committed offset stays (the group reads it from its start anyway);
 * - an offset must be inside the partition (its log start to its end);
 * - a time must not be in the future, nor before the start of a partition's retained log when records were
 *   removed from it (what came between that time and the log start is gone; the refusal names the earliest
 *   offset still held).
 */
export function planMoves(
  target: Exclude<ReplayTarget, { mode: 'duration' }>,
  positions: readonly PartitionPosition[],
  now: Date,
): PartitionMove[] {
  if (target.mode === 'datetime' && target.at.getTime() > now.getTime())
    throw new LtError('LT_REPLAY_INVALID', `${target.at.toISOString()} is in the future`, {
      details: { at: target.at.toISOString(), now: now.toISOString() },
      hint: 'give a time in the past (the replay re-reads what came after it), or --to-earliest for everything',
    });
  if (target.mode === 'offset') return [offsetMove(target, positions)];
  return positions.map((position) => {
    const wanted = target.mode === 'earliest' ? position.logStart : timeOffset(target.at, position);
    return backwardOnly(position, wanted);
  });
}

function timeOffset(at: Date, position: PartitionPosition): number {
  const offset = position.offsetAtTime ?? position.logEnd;
  // the first record still held is at or after `at`, and records before it were removed: those between `at`
  // and the log start may be among them, so "re-read from `at`" cannot be kept
  if (offset === position.logStart && position.logStart > 0 && position.logStart < position.logEnd)
    throw new LtError(
      'LT_BEFORE_RETAINED_LOG',
      `${at.toISOString()} is before the start of the retained log of ${position.topic} partition ` +
        `${position.partition}: the earliest record it still holds is offset ${position.logStart} ` +
        `(offsets 0–${position.logStart - 1} were removed)`,
      {
        details: {
          at: at.toISOString(),
          topic: position.topic,
          partition: position.partition,
          earliestRetainedOffset: position.logStart,
        },
        hint: 'give a later time, or --to-earliest to re-read everything still retained (the removed records cannot be replayed)',
      },
    );
  return offset;
}

function unchanged(position: PartitionPosition, stays: string): PartitionMove {
  const committed = position.committed < 0 ? null : position.committed;
  return { ...place(position), committed, to: committed, reread: 0, stays };
}

function place(
  position: PartitionPosition,
): Pick<PartitionMove, 'topic' | 'partition' | 'logStart' | 'logEnd'> {
  const { topic, partition, logStart, logEnd } = position;
  return { topic, partition, logStart, logEnd };
}

function backwardOnly(position: PartitionPosition, wanted: number): PartitionMove {
  if (position.committed < 0)
    return unchanged(position, 'no committed offset: the group reads it from the start');
  if (wanted >= position.committed) return unchanged(position, 'already at or before the target');
  return {
    ...place(position),
    committed: position.committed,
    to: wanted,
    reread: position.committed - wanted,
  };
}

function offsetMove(
  target: Extract<ReplayTarget, { mode: 'offset' }>,
  positions: readonly PartitionPosition[],
): PartitionMove {
  const position = positions.find(
    (candidate) => candidate.topic === target.topic && candidate.partition === target.partition,
  );
  if (!position) {
    const partitions = positions.filter((candidate) => candidate.topic === target.topic);
    throw new LtError(
      'LT_TOPIC_UNKNOWN',
      partitions.length === 0
        ? `the group reads no topic ${target.topic}`
        : `${target.topic} has no partition ${target.partition}`,
      {
        details: { topic: target.topic, partition: target.partition },
        hint:
          partitions.length === 0
            ? `the group reads: ${[...new Set(positions.map((candidate) => candidate.topic))].join(', ')}`
            : `its partitions are 0–${Math.max(...partitions.map((candidate) => candidate.partition))}`,
      },
    );
  }
  if (target.offset < position.logStart || target.offset > position.logEnd)
    throw new LtError(
      'LT_OFFSET_OUT_OF_RANGE',
      `offset ${target.offset} is outside ${target.topic} partition ${target.partition}, which holds ` +
        `${position.logStart}–${position.logEnd} (log start to end)`,
      {
        details: { ...place(position), offset: target.offset },
        hint: `give an offset from ${position.logStart} to ${position.logEnd}, or --to-earliest`,
      },
    );
  if (position.committed < 0)
    throw new LtError(
      'LT_REPLAY_INVALID',
      `the group has no committed offset on ${target.topic} partition ${target.partition}: it reads it from the start anyway`,
      { details: { ...place(position) }, hint: 'nothing to replay there' },
    );
  if (target.offset > position.committed)
    throw new LtError(
      'LT_REPLAY_INVALID',
      `offset ${target.offset} is ahead of the group's committed offset ${position.committed} on ` +
        `${target.topic} partition ${target.partition}: moving there would skip ${target.offset - position.committed} unread record(s)`,
      {
        details: { ...place(position), committed: position.committed, offset: target.offset },
        hint: `a replay only moves a group back: give an offset from ${position.logStart} to ${position.committed}`,
      },
    );
  return backwardOnly(position, target.offset);
}
