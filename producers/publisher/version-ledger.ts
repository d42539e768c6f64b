import { LtError } from '../../infra/errors.ts';
import type { Pool, PoolClient } from '../../infra/postgres/pool.ts';

/** An event published under an eventId its caller gave, and a digest of what it said. */
export interface PublishedEvent {
  eventId: string;
  dataset: string;
  key: string;
  version: number;
  digest: Buffer;
}

/** The ledger inside one locked transaction: read the last versions, then advance them after the ack. */
export interface LedgerTransaction {
  /** The last published version of each key that has one. */
  lastVersions(keys: string[]): Promise<Map<string, number>>;
  /** The events already published under these eventIds (whatever their dataset), by eventId. */
  publishedEvents(eventIds: string[]): Promise<Map<string, PublishedEvent>>;
  /** Records the highest version per key (never moving a key backwards) and the events given by eventId. */
  advance(versions: Map<string, number>, events?: readonly PublishedEvent[]): Promise<void>;
}

/**
 * The last version an Agent Node published per key, kept in the agency's PostgreSQL (`lt_published_version`,
 * migration set `agent`). A publish runs inside {@link VersionLedger.transaction}: a transaction-level
 * advisory lock on the dataset serializes every process that publishes it (the agent's inputs, a snapshot
 * run, a second node), so the check, the send and the advance of one batch cannot interleave with another's
 * and per-key order on the topic holds across processes and hosts. The ledger advances only after the
 * broker's acknowledgement, so a failed publish can be retried with the same version.
 */
export class VersionLedger {
  private readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  async transaction<T>(dataset: string, work: (tx: LedgerTransaction) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw unreachable(cause);
    }
    try {
      await query(client, 'BEGIN');
      await query(client, 'SELECT pg_advisory_xact_lock(hashtext($1))', [`lt_published_version:${dataset}`]);
      const result = await work({
        lastVersions: async (keys) => {
          if (keys.length === 0) return new Map();
          const { rows } = await query<{ key: string; version: string }>(
            client,
            // one primary-key probe per key (LATERAL … LIMIT stays a nested loop), not a plan that depends on
            // the table's statistics being fresh
            `SELECT k.key, found.version FROM unnest($2::text[]) AS k(key)
              CROSS JOIN LATERAL (SELECT v.version FROM lt_published_version v
                                   WHERE v.dataset = $1 AND v.key = k.key LIMIT 1) AS found`,
            [dataset, keys],
          );
          return new Map(rows.map((row) => [row.key, Number(row.version)]));
        },
        publishedEvents: async (eventIds) => {
          if (eventIds.length === 0) return new Map();
          const { rows } = await query<{
            event_id: string;
            dataset: string;
            key: string;
            version: string;
            digest: Buffer;
          }>(
            client,
            'SELECT event_id, dataset, key, version, digest FROM lt_published_event WHERE event_id = ANY($1::text[])',
            [eventIds],
          );
          return new Map(
            rows.map((row) => [
              row.event_id,
              {
                eventId: row.event_id,
                dataset: row.dataset,
                key: row.key,
                version: Number(row.version),
                digest: row.digest,
              },
            ]),
          );
        },
        advance: async (versions, events = []) => {
          if (events.length > 0)
            await query(
              client,
              // another dataset's publish may have taken the eventId meanwhile (it holds another lock): the
              // first keeps it, and the retry of the second is refused as a reuse
              `INSERT INTO lt_published_event (event_id, dataset, key, version, digest)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[])
               ON CONFLICT (event_id) DO NOTHING`,
              [
                events.map((event) => event.eventId),
                events.map((event) => event.dataset),
                events.map((event) => event.key),
                events.map((event) => event.version),
                events.map((event) => event.digest),
              ],
            );
          if (versions.size === 0) return;
          await query(
            client,
            `INSERT INTO lt_published_version (dataset, key, version)
             SELECT $1, key, version FROM unnest($2::text[], $3::bigint[]) AS v(key, version)
             ON CONFLICT (dataset, key) DO UPDATE SET version = EXCLUDED.version
             WHERE lt_published_version.version < EXCLUDED.version`,
            [dataset, [...versions.keys()], [...versions.values()]],
          );
        },
      });
      await query(client, 'COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** The last published versions, read outside any publish (tests, tools). */
  async lastVersions(dataset: string, keys: string[]): Promise<Map<string, number>> {
    return this.transaction(dataset, (tx) => tx.lastVersions(keys));
  }
}

function unreachable(cause: unknown): LtError {
  return new LtError(
    'LT_POSTGRES_UNREACHABLE',
    `the version ledger is unavailable: ${(cause as Error).message}`,
    {
      cause,
      hint: 'the Agent Node keeps its ledger in the agency database; check that it is running and reachable',
    },
  );
}

/** A query whose PostgreSQL failure becomes a retriable LT_POSTGRES_UNREACHABLE at this adapter boundary. */
async function query<R extends object = object>(
  client: PoolClient,
  sql: string,
  params?: unknown[],
): Promise<{ rows: R[] }> {
  try {
    return await client.query<R>(sql, params);
  } catch (cause) {
    throw unreachable(cause);
  }
}
