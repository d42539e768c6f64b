import type { PoolClient } from '../../infra/postgres/pool.ts';

/** One agreement at one revision: the unit the coordinator keeps membership and progress for. */
export interface StreamRef {
  agreementId: string;
  revision: number;
}

/**
 * One index probe per key, whatever the planner believes: `key = ANY($3)` lets PostgreSQL scan every member of
 * the agreement and filter, which it chooses while the table's statistics are stale (right after a backfill
 * inserted 200,000 members, that took over a second per batch). A LATERAL subquery with LIMIT cannot be
 * flattened into a join, so it stays a nested loop of primary-key lookups.
 */
const MEMBERS_OF_KEYS = `SELECT k.key, found.shared_digest FROM unnest($3::text[]) AS k(key)
  CROSS JOIN LATERAL (SELECT m.shared_digest FROM agreement_membership m
                       WHERE m.agreement_id = $1 AND m.revision = $2 AND m.key = k.key LIMIT 1) AS found`;

/** The members among some keys, each with the digest of what was last shared of it (null: not known). */
export type Members = Map<string, Buffer | null>;

/** Reads and writes the coordinator's state inside the batch's transaction. */
export class CoordinatorState {
  private readonly db: PoolClient;

  constructor(db: PoolClient) {
    this.db = db;
  }

  /** Next offset per agreement for one partition; absent = start at 0. */
  async progress(streams: StreamRef[], topic: string, partition: number): Promise<Map<string, number>> {
    if (streams.length === 0) return new Map();
    const { rows } = await this.db.query<{ agreement_id: string; revision: number; next_offset: string }>(
      `SELECT agreement_id, revision, next_offset FROM agreement_progress
        WHERE topic = $1 AND partition = $2 AND (agreement_id, revision) IN (SELECT * FROM unnest($3::text[], $4::int[]))`,
      [topic, partition, streams.map((s) => s.agreementId), streams.map((s) => s.revision)],
    );
    return new Map(rows.map((row) => [`${row.agreement_id}#${row.revision}`, Number(row.next_offset)]));
  }

  /** The keys of `keys` that the stream currently shares, with the digest of what it last shared of each. */
  async members(stream: StreamRef, keys: string[]): Promise<Members> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.db.query<{ key: string; shared_digest: Buffer | null }>(MEMBERS_OF_KEYS, [
      stream.agreementId,
      stream.revision,
      keys,
    ]);
    return new Map(rows.map((row) => [row.key, row.shared_digest]));
  }

  /** Records members that entered or whose shared record changed (`shared`), and removes those that `left`. */
  async apply(stream: StreamRef, shared: Members, left: string[]): Promise<void> {
    if (shared.size > 0) {
      await this.db.query(
        `INSERT INTO agreement_membership (agreement_id, revision, key, shared_digest)
         SELECT $1, $2, key, digest FROM unnest($3::text[], $4::bytea[]) AS k(key, digest)
         ON CONFLICT (agreement_id, revision, key) DO UPDATE SET shared_digest = EXCLUDED.shared_digest`,
        [stream.agreementId, stream.revision, [...shared.keys()], [...shared.values()]],
      );
    }
    if (left.length > 0) {
      await this.db.query(
        `DELETE FROM agreement_membership WHERE ctid = ANY(ARRAY(
           SELECT found.ctid FROM unnest($3::text[]) AS k(key)
            CROSS JOIN LATERAL (SELECT m.ctid FROM agreement_membership m
                                 WHERE m.agreement_id = $1 AND m.revision = $2 AND m.key = k.key LIMIT 1) AS found))`,
        [stream.agreementId, stream.revision, left],
      );
    }
  }

  async advance(stream: StreamRef, topic: string, partition: number, nextOffset: number): Promise<void> {
    await this.db.query(
      `INSERT INTO agreement_progress (agreement_id, revision, topic, partition, next_offset) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (agreement_id, revision, topic, partition)
       DO UPDATE SET next_offset = GREATEST(agreement_progress.next_offset, EXCLUDED.next_offset), updated_at = now()`,
      [stream.agreementId, stream.revision, topic, partition, nextOffset],
    );
  }
}
