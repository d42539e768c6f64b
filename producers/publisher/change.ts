import { z } from 'zod';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';

/** One change as an agency states it; the publisher adds the envelope (eventId, traceId, …). */
export type Change<R = DatasetRecord> = ChangeCommon &
  ({ op: 'DELETE'; key: string } | { op: 'CREATE' | 'UPDATE' | 'SNAPSHOT'; after: R });

interface ChangeCommon {
  /** Strictly increasing per key: the publisher refuses one not above the last it published. */
  version: number;
  /** When the change happened at the source; default now. */
  occurredAt?: Date;
  traceId?: string;
  /**
   * A UUIDv7 the caller derived deterministically (the outbox relay does, from its row), so that a
   * re-publish after a crash carries the same eventId and downstream dedup recognises it. Default: new.
   */
  eventId?: string;
}

const common = {
  version: z
    .number({ error: 'version must be a whole number ≥ 1' })
    .int('version must be a whole number')
    .min(1, 'version must be ≥ 1')
    .refine(Number.isSafeInteger, 'version is beyond 2^53'),
  occurredAt: z
    .union([z.date(), z.iso.datetime({ offset: true }).transform((text) => new Date(text))], {
      error: 'occurredAt must be an ISO 8601 timestamp with a time zone',
    })
    .optional(),
  traceId: z.string().min(1).max(128).optional(),
  eventId: z.uuid({ error: 'eventId must be a UUID' }).optional(),
};

/**
 * The shape of a change from outside (HTTP, outbox rows, JavaScript callers); the record itself is checked
 * afterwards against its dataset. `after` stays unknown here: the dataset's validator owns it.
 */
export const ChangeSchema = z.discriminatedUnion(
  'op',
  [
    z
      .object({ op: z.literal('DELETE'), key: z.string().min(1, 'key is required for a DELETE'), ...common })
      .strict(),
    z
      .object({
        op: z.enum(['CREATE', 'UPDATE', 'SNAPSHOT']),
        after: z.record(z.string(), z.unknown(), { error: 'after must be the record, an object' }),
        ...common,
      })
      .strict(),
  ],
  { error: 'op must be one of CREATE, UPDATE, DELETE, SNAPSHOT' },
);

/** Parses an unknown value into a Change, or says what is wrong with it. */
export function parseChange(input: unknown): { ok: true; change: Change } | { ok: false; message: string } {
  const parsed = ChangeSchema.safeParse(input);
  if (parsed.success) return { ok: true, change: parsed.data as Change };
  return {
    ok: false,
    message: parsed.error.issues
      .map((issue) => `${issue.path.join('.') || 'change'}: ${issue.message}`)
      .join('; '),
  };
}
