import type { Pool } from '../../infra/postgres/pool.ts';

/**
 * The last version an Agent Node published per key, kept in the agency's PostgreSQL (`lt_published_version`,
 * migration set `agent`). Checked before producing and advanced only after the broker acknowledged, so a
 * failed publish can be retried with the same version.
 */
export class VersionLedger {
  constructor(private readonly pool: Pool) {}

  /** The last published version of each key that has one. */
  async lastVersions(dataset: string, keys: string[]): Promise<Map<string, number>> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.pool.query<{ key: string; version: string }>(
      'SELECT key, version FROM lt_published_version WHERE dataset = $1 AND key = ANY($2::text[])',
      [dataset, keys],
    );
    return new Map(rows.map((row) => [row.key, Number(row.version)]));
  }

  /** Records the highest version per key; never moves a key backwards. */
  async advance(dataset: string, versions: Map<string, number>): Promise<void> {
    if (versions.size === 0) return;
    await this.pool.query(
      `INSERT INTO lt_published_version (dataset, key, version)
       SELECT $1, key, version FROM unnest($2::text[], $3::bigint[]) AS v(key, version)
       ON CONFLICT (dataset, key) DO UPDATE SET version = EXCLUDED.version
       WHERE lt_published_version.version < EXCLUDED.version`,
      [dataset, [...versions.keys()], [...versions.values()]],
    );
  }
}
