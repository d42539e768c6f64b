import { ErrorCodes, LtError } from '../../infra/errors.ts';
import { topicKind, topics } from '../../infra/kafka/topics.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { AGENCY_DEAD_LETTER_STAGES, PLATFORM_DEAD_LETTER_STAGES } from '../topics/plan.ts';
import type { DeadLetterView } from './dead-letter.ts';

/** Every stage that keeps dead letters: the platform's own, and the agencies'. */
export const DEAD_LETTER_STAGES = [...PLATFORM_DEAD_LETTER_STAGES, ...AGENCY_DEAD_LETTER_STAGES] as const;
export type DeadLetterStage = (typeof DEAD_LETTER_STAGES)[number];

/** Which dead letters a command concerns; every field narrows, none set means all. */
export interface DeadLetterFilter {
  stage?: DeadLetterStage;
  /** An agency code of the dictionary: its own dead-letter topics (`lt.dlq.<stage>.<agency>`). */
  agency?: string;
  /** An error code (`LT_SCHEMA_UNKNOWN`, …). */
  code?: string;
  /** A dataset id of the dictionary. */
  dataset?: string;
  /** Dead-lettered at or after. */
  since?: Date;
  /** Dead-lettered before. */
  until?: Date;
}

/** A filter as typed on the command line (all text), before it is checked. */
export interface DeadLetterFilterInput {
  stage?: string | undefined;
  agency?: string | undefined;
  code?: string | undefined;
  dataset?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

const refuse = (message: string, hint: string, details: Record<string, unknown>): LtError =>
  new LtError('LT_ARGUMENT_INVALID', message, { hint, details });

const DURATION = /^(\d+)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `2026-12-01T08:00:00Z`, a date, or a duration back from `now` (`30m`, `6h`, `7d`). */
export function parseTime(text: string, field: string, now: Date = new Date()): Date {
  const duration = DURATION.exec(text);
  if (duration)
    return new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime()))
    throw refuse(
      `--${field} "${text}" is neither a time nor a duration`,
      'give an ISO time (2026-12-01T08:00:00Z) or a duration back from now (30m, 6h, 7d)',
      { [field]: text },
    );
  return at;
}

/**
 * The filter of a command, checked: a stage the platform has, an agency and a dataset of the dictionary, an
 * error code lienthong knows, a time range that is one. Each wrong value is refused naming what is allowed.
 */
export function parseDeadLetterFilter(
  input: DeadLetterFilterInput,
  dictionary: Dictionary,
  now: Date = new Date(),
): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (input.stage !== undefined) {
    if (!(DEAD_LETTER_STAGES as readonly string[]).includes(input.stage))
      throw refuse(`unknown stage "${input.stage}"`, `the stages are ${DEAD_LETTER_STAGES.join(', ')}`, {
        stage: input.stage,
      });
    filter.stage = input.stage as DeadLetterStage;
  }
  if (input.agency !== undefined) {
    if (!dictionary.agencies.has(input.agency))
      throw refuse(
        `unknown agency "${input.agency}"`,
        `agencies of the dictionary: ${[...dictionary.agencies.keys()].join(', ')}`,
        {
          agency: input.agency,
        },
      );
    if (
      filter.stage !== undefined &&
      !(AGENCY_DEAD_LETTER_STAGES as readonly string[]).includes(filter.stage)
    )
      throw refuse(
        `stage ${filter.stage} belongs to the platform, not to an agency`,
        `an agency has the stages ${AGENCY_DEAD_LETTER_STAGES.join(', ')}; drop --agency or --stage`,
        {
          stage: filter.stage,
          agency: input.agency,
        },
      );
    filter.agency = input.agency;
  }
  if (input.code !== undefined) {
    if (!Object.hasOwn(ErrorCodes, input.code))
      throw refuse(
        `unknown error code "${input.code}"`,
        'codes look like LT_SCHEMA_UNKNOWN; `lienthong dlq list` shows those present',
        {
          code: input.code,
        },
      );
    filter.code = input.code;
  }
  if (input.dataset !== undefined) {
    if (!dictionary.datasets.has(input.dataset))
      throw refuse(
        `unknown dataset "${input.dataset}"`,
        `datasets of the dictionary: ${[...dictionary.datasets.keys()].join(', ')}`,
        {
          dataset: input.dataset,
        },
      );
    filter.dataset = input.dataset;
  }
  if (input.since !== undefined) filter.since = parseTime(input.since, 'since', now);
  if (input.until !== undefined) filter.until = parseTime(input.until, 'until', now);
  if (filter.since && filter.until && filter.since.getTime() >= filter.until.getTime())
    throw refuse('--since is not before --until', 'give a range whose start comes before its end', {
      since: input.since,
      until: input.until,
    });
  return filter;
}

/** Whether a filter narrows at all (a redrive or discard of everything must be asked for on purpose). */
export function isEmptyFilter(filter: DeadLetterFilter): boolean {
  return Object.values(filter).every((value) => value === undefined);
}

/** The dead-letter topics a filter can concern, among those that exist. */
export function topicsOfFilter(filter: DeadLetterFilter, existing: readonly string[]): string[] {
  return existing.filter((topic) => {
    const kind = topicKind(topic);
    if (kind.kind !== 'dead-letter') return false;
    if (filter.stage !== undefined && kind.stage !== filter.stage) return false;
    if (filter.agency !== undefined) return topic === topics.deadLetter(kind.stage, filter.agency);
    return true;
  });
}

/** Whether one dead letter matches every field of the filter. */
export function matchesFilter(view: DeadLetterView, filter: DeadLetterFilter): boolean {
  if (filter.stage !== undefined && view.stage !== filter.stage) return false;
  if (filter.agency !== undefined && view.agency !== filter.agency) return false;
  if (filter.code !== undefined && view.code !== filter.code) return false;
  if (filter.dataset !== undefined && view.dataset !== filter.dataset) return false;
  const at = Date.parse(view.deadLetteredAt);
  if (filter.since !== undefined && at < filter.since.getTime()) return false;
  if (filter.until !== undefined && at >= filter.until.getTime()) return false;
  return true;
}
