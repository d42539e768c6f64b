import { LtError } from '../../infra/errors.ts';
import type { ReplayTarget } from './plan.ts';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Grammar: one or more `<whole number><unit>`, unit s m h d w, largest first: `90m`, `2h`, `7d`, `1d12h`. */
const DURATION = /^(?:\d+[wdhms])+$/;

/** `--by-duration` text as milliseconds, e.g. `1d12h` → 129,600,000. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const ms = DURATION.test(trimmed)
    ? [...trimmed.matchAll(/(\d+)([wdhms])/g)].reduce(
        (sum, [, count, unit]) => sum + Number(count) * UNIT_MS[unit as keyof typeof UNIT_MS],
        0,
      )
    : 0;
  if (ms <= 0 || !Number.isSafeInteger(ms))
    throw new LtError('LT_REPLAY_INVALID', `--by-duration "${text}" is not a duration`, {
      hint: 'a whole number and a unit (s, m, h, d, w), several allowed: 30m, 2h, 7d, 1d12h',
    });
  return ms;
}

/** An ISO 8601 date and time with its zone, e.g. `2026-12-01T08:00:00+07:00` or `2026-12-01T01:00:00Z`. */
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `--to-datetime` text as a Date; a time without its zone is refused (whose 08:00 would it be?). */
export function parseDateTime(text: string): Date {
  const at = new Date(text.trim());
  if (!DATETIME.test(text.trim()) || Number.isNaN(at.getTime()))
    throw new LtError('LT_REPLAY_INVALID', `--to-datetime "${text}" is not a date and time with its zone`, {
      hint: 'ISO 8601 with the zone: 2026-12-01T08:00:00+07:00 (Hà Nội) or 2026-12-01T01:00:00Z',
    });
  return at;
}

/** `--to-offset topic:partition:offset` (topic names have no colon), e.g. `lt.src.population.citizen:2:1500`. */
export function parseOffsetTarget(text: string): Extract<ReplayTarget, { mode: 'offset' }> {
  const match = /^([^:\s]+):(\d+):(\d+)$/.exec(text.trim());
  const partition = Number(match?.[2]);
  const offset = Number(match?.[3]);
  if (!match || !Number.isSafeInteger(partition) || !Number.isSafeInteger(offset))
    throw new LtError('LT_REPLAY_INVALID', `--to-offset "${text}" is not topic:partition:offset`, {
      hint: 'e.g. --to-offset lt.src.population.citizen:2:1500 (partition and offset are whole numbers)',
    });
  return { mode: 'offset', topic: match[1]!, partition, offset };
}

/** The one target the options name; none or several is refused. */
export function replayTarget(options: {
  toEarliest?: boolean;
  toDatetime?: string;
  byDuration?: string;
  toOffset?: string;
}): ReplayTarget {
  const named = [
    options.toEarliest ? '--to-earliest' : null,
    options.toDatetime === undefined ? null : '--to-datetime',
    options.byDuration === undefined ? null : '--by-duration',
    options.toOffset === undefined ? null : '--to-offset',
  ].filter((name) => name !== null);
  if (named.length !== 1)
    throw new LtError(
      'LT_REPLAY_INVALID',
      named.length === 0 ? 'name where to replay from' : `name one target, not ${named.join(' and ')}`,
      { hint: 'exactly one of --to-earliest, --to-datetime <T>, --by-duration <D>, --to-offset <t:p:o>' },
    );
  if (options.toEarliest) return { mode: 'earliest' };
  if (options.toDatetime !== undefined) return { mode: 'datetime', at: parseDateTime(options.toDatetime) };
  if (options.byDuration !== undefined) return { mode: 'duration', ms: parseDuration(options.byDuration) };
  return parseOffsetTarget(options.toOffset!);
}
