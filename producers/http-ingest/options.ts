import { z } from 'zod';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { Publisher } from '../publisher/index.ts';

/**
 * One client allowed to post changes: a name for the logs and the SHA-256 digest of its bearer token.
 * The token itself is never configured, stored or logged (see docs/http-ingest.md for issuing one).
 */
export interface IngestToken {
  /** Who holds the token, e.g. `ho-tich-dien-tu`; written to the log with every request it makes. */
  name: string;
  /** The SHA-256 digest of the token's UTF-8 bytes, as 64 hex digits (`printf %s "$token" | sha256sum`). */
  sha256: string;
}

export interface IngestServerOptions {
  /** The Agent Node's publish path; every accepted record goes through it (validation, owner, versions). */
  publisher: Publisher;
  /** The clients allowed to post; at least one. */
  tokens: IngestToken[];
  log: Logger;
  /** Largest request body accepted, in bytes; a larger one is answered 413. Default 16 MiB. */
  maxBodyBytes?: number;
  /** Most changes one request may carry; more are answered 413 with the limit. Default 10,000. */
  maxRecordsPerRequest?: number;
  /** Seconds a client is asked to wait (`Retry-After`) when the broker or registry is unavailable. Default 5. */
  retryAfterSeconds?: number;
  /** Key and certificate (PEM) to serve TLS with; unset: plaintext (the Agent Node never leaves it unset but asked). */
  tls?: { key: string; cert: string };
}

export const INGEST_DEFAULTS = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxRecordsPerRequest: 10_000,
  retryAfterSeconds: 5,
} as const;

const TokenSchema = z
  .object({
    name: z
      .string({ error: 'name is required' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'name must be 1–100 letters, digits, ".", "_" or "-"'),
    sha256: z
      .string({ error: 'sha256 is required' })
      .regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be the 64 hex digits of the token’s SHA-256 digest'),
  })
  .strict();

const SettingsSchema = z.object({
  tokens: z
    .array(TokenSchema, { error: 'tokens must be a list of { name, sha256 }' })
    .min(1, 'at least one token is required: without one every request would be refused')
    .superRefine((tokens, ctx) => {
      const names = new Set<string>();
      const digests = new Set<string>();
      tokens.forEach((token, index) => {
        if (names.has(token.name))
          ctx.addIssue({
            code: 'custom',
            path: [index, 'name'],
            message: `name "${token.name}" is used twice`,
          });
        const digest = token.sha256.toLowerCase();
        if (digests.has(digest))
          ctx.addIssue({
            code: 'custom',
            path: [index, 'sha256'],
            message: 'the same token digest is configured twice: a request could not be told apart',
          });
        names.add(token.name);
        digests.add(digest);
      });
    }),
  maxBodyBytes: z
    .number()
    .int('maxBodyBytes must be a whole number')
    .positive('maxBodyBytes must be > 0')
    .default(INGEST_DEFAULTS.maxBodyBytes),
  maxRecordsPerRequest: z
    .number()
    .int('maxRecordsPerRequest must be a whole number')
    .positive('maxRecordsPerRequest must be > 0')
    .default(INGEST_DEFAULTS.maxRecordsPerRequest),
  retryAfterSeconds: z
    .number()
    .int('retryAfterSeconds must be a whole number')
    .min(0, 'retryAfterSeconds must be ≥ 0')
    .default(INGEST_DEFAULTS.retryAfterSeconds),
});

/** The checked settings of an ingest server, defaults applied. */
export type IngestSettings = z.infer<typeof SettingsSchema>;

/** Checks the configurable part of the options once, at start; a problem names the field and the rule. */
export function ingestSettings(options: IngestServerOptions): IngestSettings {
  const parsed = SettingsSchema.safeParse({
    tokens: options.tokens,
    maxBodyBytes: options.maxBodyBytes,
    maxRecordsPerRequest: options.maxRecordsPerRequest,
    retryAfterSeconds: options.retryAfterSeconds,
  });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || '(options)'}: ${issue.message}`,
  );
  throw new LtError('LT_CONFIG_INVALID', `HTTP ingest options are invalid: ${problems.join('; ')}`, {
    details: { problems },
    hint: 'issue tokens as described in docs/http-ingest.md and configure only their digests',
  });
}
