import { describe, expect, it } from 'vitest';
import type { OperatorAuditEntry } from '../../../../platform/audit/operator-audit.ts';
import { partitionLag, unfinishedActions } from '../../../../platform/status/derive.ts';

let seq = 0;
function entry(action: string, target: string, outcome: OperatorAuditEntry['outcome']): OperatorAuditEntry {
  seq += 1;
  return {
    seq,
    at: new Date(Date.UTC(2026, 11, 2, 0, seq)),
    principal: 'lt-operator',
    action,
    target,
    outcome,
    detail: {},
  };
}

describe('status: lag of a partition', () => {
  it('counts from the committed offset to the log end', () => {
    expect(partitionLag({ partition: 0, committed: 4, logStart: 0, logEnd: 10 })).toEqual({
      partition: 0,
      committed: 4,
      logStart: 0,
      logEnd: 10,
      lag: 6,
      belowLogStart: false,
    });
  });

  it('counts from the log start where the group never committed', () => {
    expect(partitionLag({ partition: 1, committed: -1, logStart: 3, logEnd: 10 })).toMatchObject({
      committed: null,
      lag: 7,
      belowLogStart: false,
    });
  });

  it('flags a committed offset below the log start: records were deleted unread', () => {
    expect(partitionLag({ partition: 2, committed: 1, logStart: 5, logEnd: 8 })).toMatchObject({
      lag: 7,
      belowLogStart: true,
    });
  });

  it('is never negative', () => {
    expect(partitionLag({ partition: 0, committed: 12, logStart: 0, logEnd: 10 }).lag).toBe(0);
  });
});

describe('status: operator actions in progress', () => {
  it('lists a planned action with no outcome after it, oldest first', () => {
    const replay = entry('replay', 'lt.ngdb', 'planned');
    const rebuildPlanned = entry('rebuild', 'ngdb', 'planned');
    const rebuildDone = entry('rebuild', 'ngdb', 'done');
    const other = entry('replay', 'lt.sink.bhxh', 'planned');
    const failedOne = entry('replay', 'lt.coordinator', 'planned');
    const failed = entry('replay', 'lt.coordinator', 'failed');
    expect(unfinishedActions([failed, other, rebuildDone, replay, failedOne, rebuildPlanned])).toEqual([
      replay,
      other,
    ]);
  });

  it('lists an action planned again after it was done', () => {
    const first = entry('rebuild', 'agency:BCA', 'planned');
    const done = entry('rebuild', 'agency:BCA', 'done');
    const again = entry('rebuild', 'agency:BCA', 'planned');
    expect(unfinishedActions([first, done, again])).toEqual([again]);
  });

  it('does not list a refused action', () => {
    expect(unfinishedActions([entry('dlq.discard', 'lt.dlq.ngdb', 'refused')])).toEqual([]);
  });
});
