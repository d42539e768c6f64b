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
const STATES_OF_KEYS = `SELECT k.key, found.shared_digest, found.version, found.member FROM unnest($3::text[]) AS k(key)
  CROSS JOIN LATERAL (SELECT m.shared_digest, m.version, m.member FROM agreement_membership m
                       WHERE m.agreement_id = $1 AND m.revision = $2 AND m.key = k.key LIMIT 1) AS found`;

/** What a stream knows of one key it shares or once shared. */
export interface KeyState {
  /** Shared now (inside the filter at the last version processed). */
  member: boolean;
  /** Digest of what was last shared of it (null: not a member, or not known). */
  digest: Buffer | null;
  /** The last source version processed for it (null: not known, from before versions were kept). */
  version: number | null;
}

/** The states of some keys, by key; a key the stream never shared has none. */
export type KeyStates = Map<string, KeyState>;

/**
 * The backfill of one stream on one partition: it derives [log start, `until`) on its own consumer; the live side
 * derives [`until`, …). `next`: how far the backfill got (complete once `next >= until`).
 */
export interface PartitionBackfill {
  until: number;
  next: number;
}

/** Reads and writes the coordinator's state inside the batch's transaction. */
export class CoordinatorState {
  private readonly db: PoolClient;

  constructor(db: PoolClient) {
    this.db = db;
  }

  /**
   * Takes one source partition for the rest of the transaction: every coordinator on this platform schema (any
   * process, any host) that derives the same partition waits here. Kafka gives a partition to one member of the
   * group at a time, but a member whose partition was just moved (its session expired while a batch was still
   * running: a pause, a slow commit) can still finish that batch while the new owner starts on it; without the
   * lock both would read the same membership, and the one committing last could write back an older key state
   * over a newer one — after which a later change that shares what the older state shared would be taken for
   * "nothing new" and never reach the subscriber. Taken before `progress` and `states`, it makes the second
   * transaction see what the first committed: it skips the offsets already processed and the versions already
   * taken.
   */
  async lockPartition(topic: string, partition: number): Promise<void> {
    await this.db.query(
      `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_coordinator:' || $1::text), $2::int)`,
      [topic, partition],
    );
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

  /** The backfill of each stream that has one on this partition, by `agreement#revision`. */
  async backfills(
    streams: StreamRef[],
    topic: string,
    partition: number,
  ): Promise<Map<string, PartitionBackfill>> {
    if (streams.length === 0) return new Map();
    const { rows } = await this.db.query<{
      agreement_id: string;
      revision: number;
      until_offset: string;
      next_offset: string;
    }>(
      `SELECT agreement_id, revision, until_offset, next_offset FROM agreement_backfill
        WHERE topic = $1 AND partition = $2 AND (agreement_id, revision) IN (SELECT * FROM unnest($3::text[], $4::int[]))`,
      [topic, partition, streams.map((s) => s.agreementId), streams.map((s) => s.revision)],
    );
    return new Map(
      rows.map((row) => [
        `${row.agreement_id}#${row.revision}`,
        { until: Number(row.until_offset), next: Number(row.next_offset) },
      ]),
    );
  }

  /**
   * Decides, once per stream (idempotent across coordinators: the first to ask decides), whether its history
   * goes to a backfill consumer of its own: only when another active stream of the dataset (`others`) is
   * delivered already (it has progress, or a backfill of its own) — what a rewind of the main consumer would
   * stall. Then `until` per partition (the end offsets now) is where the live side takes the new stream from.
   * Otherwise the main consumer derives it from the log start, recorded as its progress, so that a later ask
   * gives the same answer; a stream with progress already (from before backfills had a consumer of their own,
   * or decided so earlier) keeps it. Returns `backfill`, `live` (it has progress already) or `fromStart`
   * (decided now: the main consumer from the log start).
   */
  async decideHistory(
    stream: StreamRef,
    topic: string,
    offsets: { partition: number; low: number; high: number }[],
    others: readonly StreamRef[],
  ): Promise<'backfill' | 'live' | 'fromStart'> {
    await this.db.query(
      `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_backfill:' || $1::text))`,
      [`${stream.agreementId}#${stream.revision}`],
    );
    const { rows } = await this.db.query<{ backfill: boolean; progress: boolean; othersLive: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM agreement_backfill WHERE agreement_id = $1 AND revision = $2 AND topic = $3) AS backfill,
              EXISTS (SELECT 1 FROM agreement_progress WHERE agreement_id = $1 AND revision = $2 AND topic = $3) AS progress,
              EXISTS (SELECT 1 FROM agreement_progress WHERE topic = $3
                         AND (agreement_id, revision) IN (SELECT * FROM unnest($4::text[], $5::int[])))
              OR EXISTS (SELECT 1 FROM agreement_backfill WHERE topic = $3
                         AND (agreement_id, revision) IN (SELECT * FROM unnest($4::text[], $5::int[]))) AS "othersLive"`,
      [
        stream.agreementId,
        stream.revision,
        topic,
        others.map((other) => other.agreementId),
        others.map((other) => other.revision),
      ],
    );
    if (rows[0]?.backfill) return 'backfill';
    if (rows[0]?.progress) return 'live';
    const partitions = offsets.map((offset) => offset.partition);
    if (!rows[0]?.othersLive) {
      await this.db.query(
        `INSERT INTO agreement_progress (agreement_id, revision, topic, partition, next_offset)
         SELECT $1, $2, $3, partition, next_offset FROM unnest($4::int[], $5::bigint[]) AS e(partition, next_offset)
         ON CONFLICT DO NOTHING`,
        [stream.agreementId, stream.revision, topic, partitions, offsets.map((offset) => offset.low)],
      );
      return 'fromStart';
    }
    await this.db.query(
      `INSERT INTO agreement_backfill (agreement_id, revision, topic, partition, until_offset)
       SELECT $1, $2, $3, partition, until_offset FROM unnest($4::int[], $5::bigint[]) AS e(partition, until_offset)
       ON CONFLICT DO NOTHING`,
      [stream.agreementId, stream.revision, topic, partitions, offsets.map((offset) => offset.high)],
    );
    return 'backfill';
  }

  async advanceBackfill(
    stream: StreamRef,
    topic: string,
    partition: number,
    nextOffset: number,
  ): Promise<void> {
    await this.db.query(
      `UPDATE agreement_backfill SET next_offset = GREATEST(next_offset, $5), updated_at = now()
        WHERE agreement_id = $1 AND revision = $2 AND topic = $3 AND partition = $4`,
      [stream.agreementId, stream.revision, topic, partition, nextOffset],
    );
  }

  /** The versions the live side recorded (while the backfill ran) of keys the stream did not share. */
  async seen(stream: StreamRef, keys: string[]): Promise<Map<string, number>> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.db.query<{ key: string; version: string }>(
      `SELECT key, version FROM agreement_backfill_seen
        WHERE agreement_id = $1 AND revision = $2 AND key = ANY($3::text[])`,
      [stream.agreementId, stream.revision, keys],
    );
    return new Map(rows.map((row) => [row.key, Number(row.version)]));
  }

  async recordSeen(stream: StreamRef, seen: Map<string, number>): Promise<void> {
    if (seen.size === 0) return;
    await this.db.query(
      `INSERT INTO agreement_backfill_seen (agreement_id, revision, key, version)
       SELECT $1, $2, key, version FROM unnest($3::text[], $4::bigint[]) AS k(key, version)
       ON CONFLICT (agreement_id, revision, key) DO UPDATE
         SET version = GREATEST(agreement_backfill_seen.version, EXCLUDED.version)`,
      [stream.agreementId, stream.revision, [...seen.keys()], [...seen.values()]],
    );
  }

  /** What the stream knows of the keys among `keys` it shares or once shared. */
  async states(stream: StreamRef, keys: string[]): Promise<KeyStates> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.db.query<{
      key: string;
      shared_digest: Buffer | null;
      version: string | null;
      member: boolean;
    }>(STATES_OF_KEYS, [stream.agreementId, stream.revision, keys]);
    return new Map(
      rows.map((row) => [
        row.key,
        {
          member: row.member,
          digest: row.shared_digest,
          version: row.version === null ? null : Number(row.version),
        },
      ]),
    );
  }

  /** Records the states that changed: members that entered, changed or left, and the versions processed. */
  async apply(stream: StreamRef, changed: KeyStates): Promise<void> {
    if (changed.size === 0) return;
    const states = [...changed.values()];
    await this.db.query(
      `INSERT INTO agreement_membership (agreement_id, revision, key, shared_digest, version, member)
       SELECT $1, $2, key, digest, version, member
         FROM unnest($3::text[], $4::bytea[], $5::bigint[], $6::boolean[]) AS k(key, digest, version, member)
       ON CONFLICT (agreement_id, revision, key) DO UPDATE
         SET shared_digest = EXCLUDED.shared_digest, version = EXCLUDED.version, member = EXCLUDED.member`,
      [
        stream.agreementId,
        stream.revision,
        [...changed.keys()],
        states.map((state) => state.digest),
        states.map((state) => state.version),
        states.map((state) => state.member),
      ],
    );
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
