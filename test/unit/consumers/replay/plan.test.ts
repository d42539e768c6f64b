import { describe, expect, it } from 'vitest';
import { planMoves, type PartitionPosition } from '../../../../consumers/replay/plan.ts';
import {
  parseDateTime,
  parseDuration,
  parseOffsetTarget,
  replayTarget,
} from '../../../../consumers/replay/target.ts';
import { isLtError } from '../../../../infra/errors.ts';

const now = new Date('2026-12-02T12:00:00Z');
const topic = 'lt.src.population.citizen';
const at = (partition: number, fields: Partial<PartitionPosition>): PartitionPosition => ({
  topic,
  partition,
  logStart: 0,
  logEnd: 100,
  committed: 100,
  ...fields,
});

function refusal(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (isLtError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('replay plan', () => {
  it('moves every committed partition back to its log start for --to-earliest', () => {
    const moves = planMoves({ mode: 'earliest' }, [at(0, {}), at(1, { logStart: 20, committed: 70 })], now);
    expect(
      moves.map(({ partition, committed, to, reread }) => ({ partition, committed, to, reread })),
    ).toEqual([
      { partition: 0, committed: 100, to: 0, reread: 100 },
      { partition: 1, committed: 70, to: 20, reread: 50 },
    ]);
  });

  it('never moves a group forward: a partition already before the target stays', () => {
    const [move] = planMoves(
      { mode: 'datetime', at: new Date('2026-12-02T10:00:00Z') },
      [at(0, { committed: 30, offsetAtTime: 60 })],
      now,
    );
    expect(move).toMatchObject({
      committed: 30,
      to: 30,
      reread: 0,
      stays: 'already at or before the target',
    });
  });

  it('leaves a partition without a committed offset alone', () => {
    const [move] = planMoves({ mode: 'earliest' }, [at(0, { committed: -1 })], now);
    expect(move).toMatchObject({ committed: null, to: null, reread: 0 });
  });

  it('moves to the first record at or after a time', () => {
    const [move] = planMoves(
      { mode: 'datetime', at: new Date('2026-12-02T10:00:00Z') },
      [at(0, { offsetAtTime: 60 })],
      now,
    );
    expect(move).toMatchObject({ to: 60, reread: 40 });
  });

  it('refuses a time before the start of a trimmed log, naming the earliest offset still held', () => {
    const refused = refusal(() =>
      planMoves(
        { mode: 'datetime', at: new Date('2026-01-01T00:00:00Z') },
        [at(0, { logStart: 6, offsetAtTime: 6 })],
        now,
      ),
    );
    expect(refused.code).toBe('LT_BEFORE_RETAINED_LOG');
    expect(refused.message).toContain('the earliest record it still holds is offset 6');
  });

  it('takes a time before the first record of a log nothing was removed from as its start', () => {
    const [move] = planMoves(
      { mode: 'datetime', at: new Date('2020-01-01T00:00:00Z') },
      [at(0, { offsetAtTime: 0 })],
      now,
    );
    expect(move).toMatchObject({ to: 0, reread: 100 });
  });

  it('refuses a time in the future', () => {
    expect(
      refusal(() => planMoves({ mode: 'datetime', at: new Date('2027-01-01T00:00:00Z') }, [at(0, {})], now))
        .code,
    ).toBe('LT_REPLAY_INVALID');
  });

  it('moves one partition to an offset and leaves the others out of the plan', () => {
    const moves = planMoves({ mode: 'offset', topic, partition: 1, offset: 40 }, [at(0, {}), at(1, {})], now);
    expect(moves).toEqual([expect.objectContaining({ partition: 1, committed: 100, to: 40, reread: 60 })]);
  });

  it('refuses an offset outside the partition, ahead of the group, or of an unknown topic or partition', () => {
    const positions = [at(0, { logStart: 10, committed: 50 })];
    const offset = (t: string, partition: number, value: number) =>
      refusal(() => planMoves({ mode: 'offset', topic: t, partition, offset: value }, positions, now));
    expect(offset(topic, 0, 5).code).toBe('LT_OFFSET_OUT_OF_RANGE');
    expect(offset(topic, 0, 101).code).toBe('LT_OFFSET_OUT_OF_RANGE');
    expect(offset(topic, 0, 60)).toMatchObject({
      code: 'LT_REPLAY_INVALID',
      message: expect.stringContaining('skip 10'),
    });
    expect(offset(topic, 3, 20).code).toBe('LT_TOPIC_UNKNOWN');
    expect(offset('lt.src.other.x', 0, 20).code).toBe('LT_TOPIC_UNKNOWN');
  });
});

describe('replay targets', () => {
  it('reads durations as a sum of whole units', () => {
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('1d12h')).toBe(129_600_000);
    expect(parseDuration('2w')).toBe(1_209_600_000);
    for (const bad of ['', '2', 'h', '1.5h', '-2h', '0m', '2 hours'])
      expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
  });

  it('reads a date and time only with its zone', () => {
    expect(parseDateTime('2026-12-01T08:00:00+07:00').toISOString()).toBe('2026-12-01T01:00:00.000Z');
    expect(parseDateTime('2026-12-01T01:00Z').toISOString()).toBe('2026-12-01T01:00:00.000Z');
    for (const bad of ['2026-12-01T08:00:00', '2026-12-01', 'yesterday', '2026-13-45T99:00:00Z'])
      expect(() => parseDateTime(bad), bad).toThrow(/with its zone/);
  });

  it('reads topic:partition:offset from the right (topic names have dots, never colons)', () => {
    expect(parseOffsetTarget('lt.src.population.citizen:2:1500')).toEqual({
      mode: 'offset',
      topic: 'lt.src.population.citizen',
      partition: 2,
      offset: 1500,
    });
    for (const bad of ['lt.src.x:2', 'lt.src.x:a:1', ':1:2', 'lt.src.x:1:-2'])
      expect(() => parseOffsetTarget(bad), bad).toThrow(/topic:partition:offset/);
  });

  it('wants exactly one target', () => {
    expect(replayTarget({ toEarliest: true })).toEqual({ mode: 'earliest' });
    expect(() => replayTarget({})).toThrow(/name where to replay from/);
    expect(() => replayTarget({ toEarliest: true, toOffset: 'lt.src.x:0:1' })).toThrow(
      /not --to-earliest and --to-offset/,
    );
  });
});
