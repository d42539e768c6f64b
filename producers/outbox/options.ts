import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Publisher } from '../publisher/index.ts';

export interface OutboxRelayOptions {
  /**
   * The agency's own database, its search_path on the schema holding `lt_outbox` (migration set `agent`).
   * The relay takes two dedicated sessions besides the pool (leader lock + work, LISTEN); the pool serves
   * only the start-up query.
   */
  pool: Pool;
  /** The Agent Node's publish path; every row goes through it (validation, owner, version ledger). */
  publisher: Publisher;
  /** For the relay's own producer of refused rows to `lt.dlq.ingest`. */
  kafka: Kafka;
  /** The agency the Agent Node speaks for; part of each row's deterministic eventId. */
  agency: string;
  log: Logger;
  /** Most rows read, published and marked in one transaction. Default 1000. */
  batchSize?: number;
  /**
   * How often a standby relay tries to take the lock, and how often the leader looks at the outbox when
   * no notification arrives (a missed NOTIFY is caught at the latest after this long). Default 1000 ms.
   */
  pollIntervalMs?: number;
  /** The longest wait between two attempts while the broker, registry or database fails. Default 5000 ms. */
  maxBackoffMs?: number;
}

export const OUTBOX_RELAY_DEFAULTS = {
  batchSize: 1000,
  pollIntervalMs: 1000,
  maxBackoffMs: 5000,
} as const;

const SettingsSchema = z.object({
  agency: z.string().regex(/^[A-Z][A-Z0-9-]*$/, 'agency must be an agency code such as "BCA"'),
  batchSize: z
    .number()
    .int('batchSize must be a whole number')
    .min(1, 'batchSize must be ≥ 1')
    .max(50_000, 'batchSize must be ≤ 50000 (one transaction holds the row locks of a whole batch)')
    .default(OUTBOX_RELAY_DEFAULTS.batchSize),
  pollIntervalMs: z
    .number()
    .int('pollIntervalMs must be a whole number')
    .min(10, 'pollIntervalMs must be ≥ 10')
    .default(OUTBOX_RELAY_DEFAULTS.pollIntervalMs),
  maxBackoffMs: z
    .number()
    .int('maxBackoffMs must be a whole number')
    .min(10, 'maxBackoffMs must be ≥ 10')
    .default(OUTBOX_RELAY_DEFAULTS.maxBackoffMs),
});

/** The checked settings of a relay, defaults applied. */
export type OutboxRelaySettings = z.infer<typeof SettingsSchema>;

/** Checks the configurable part of the options once, in the constructor; a problem names the field and rule. */
export function outboxRelaySettings(options: OutboxRelayOptions): OutboxRelaySettings {
  const parsed = SettingsSchema.safeParse({
    agency: options.agency,
    batchSize: options.batchSize,
    pollIntervalMs: options.pollIntervalMs,
    maxBackoffMs: options.maxBackoffMs,
  });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || '(options)'}: ${issue.message}`,
  );
  throw new LtError('LT_CONFIG_INVALID', `outbox relay options are invalid: ${problems.join('; ')}`, {
    details: { problems },
  });
}
