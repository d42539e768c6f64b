import type { Pool, PoolClient } from '../../infra/postgres/pool.ts';
import { formatDeadLetterAddress, type DeadLetterAddress, type DeadLetterResolution } from './dead-letter.ts';

/**
 * `dead_letter_resolution` (platform migration 0009): what became of the dead letters an operator handled, by
 * address. A dead letter with a row here is no longer open.
 */

/** The resolutions of the dead letters kept in `topicNames`, by address. */
export async function resolutionsOf(
  pool: Pool,
  topicNames: readonly string[],
): Promise<Map<string, DeadLetterResolution>> {
  const { rows } = await pool.query<{
    topic: string;
    partition: number;
    offset: string;
    resolution: DeadLetterResolution['resolution'];
    reason: string;
    principal: string;
    resolved_at: Date;
    audit_seq: string;
  }>(
    `SELECT topic, partition, "offset"::text AS "offset", resolution, reason, principal, resolved_at, audit_seq
     FROM dead_letter_resolution WHERE topic = ANY($1::text[])`,
    [topicNames],
  );
  return new Map(
    rows.map((row) => [
      formatDeadLetterAddress(row),
      {
        resolution: row.resolution,
        reason: row.reason,
        principal: row.principal,
        resolvedAt: row.resolved_at.toISOString(),
        auditSeq: Number(row.audit_seq),
      },
    ]),
  );
}

/**
 * Marks dead letters resolved, inside the caller's transaction (with the audit entry `auditSeq`); returns the
 * addresses newly resolved — one resolved already (by a concurrent command) keeps its first resolution.
 */
export async function resolveDeadLetters(
  client: PoolClient,
  addresses: readonly DeadLetterAddress[],
  resolution: {
    resolution: DeadLetterResolution['resolution'];
    reason: string;
    principal: string;
    auditSeq: number;
  },
): Promise<string[]> {
  if (addresses.length === 0) return [];
  const { rows } = await client.query<{ topic: string; partition: number; offset: string }>(
    `INSERT INTO dead_letter_resolution (topic, partition, "offset", resolution, reason, principal, audit_seq)
     SELECT topic, partition, "offset", $4, $5, $6, $7
     FROM unnest($1::text[], $2::int[], $3::bigint[]) AS t(topic, partition, "offset")
     ON CONFLICT DO NOTHING
     RETURNING topic, partition, "offset"::text AS "offset"`,
    [
      addresses.map((address) => address.topic),
      addresses.map((address) => address.partition),
      addresses.map((address) => address.offset),
      resolution.resolution,
      resolution.reason,
      resolution.principal,
      resolution.auditSeq,
    ],
  );
  return rows.map((row) => formatDeadLetterAddress(row));
}

/** Resolutions per `topic:partition` of dead letters still kept (offset in `[low, high)`). */
export async function resolvedCounts(
  pool: Pool,
  ranges: readonly { topic: string; partition: number; low: string; high: string }[],
): Promise<Map<string, number>> {
  if (ranges.length === 0) return new Map();
  const { rows } = await pool.query<{ topic: string; partition: number; resolved: string }>(
    `SELECT r.topic, r.partition, count(*)::text AS resolved
     FROM dead_letter_resolution d
     JOIN unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(topic, partition, low, high)
       ON d.topic = r.topic AND d.partition = r.partition AND d."offset" >= r.low AND d."offset" < r.high
     GROUP BY r.topic, r.partition`,
    [
      ranges.map((range) => range.topic),
      ranges.map((range) => range.partition),
      ranges.map((range) => range.low),
      ranges.map((range) => range.high),
    ],
  );
  return new Map(rows.map((row) => [`${row.topic}:${row.partition}`, Number(row.resolved)]));
}
