import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inTransaction, type Pool } from './pool.ts';

const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Each component owns a folder of migrations and its own PostgreSQL schema. */
export type MigrationSet = 'registry' | 'agent' | 'platform';

/**
 * Applies `infra/postgres/migrations/<set>/NNNN-name.sql` files in order, each once, inside the pool's
 * schema. An advisory lock keeps two processes from migrating the same schema at once.
 */
export async function migrate(pool: Pool, set: MigrationSet): Promise<string[]> {
  const dir = join(MIGRATIONS, set);
  const files = readdirSync(dir)
    .filter((file) => /^\d{4}-[a-z0-9-]+\.sql$/.test(file))
    .sort();
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_migration'))`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS lt_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ name: string }>('SELECT name FROM lt_migration')).rows.map((row) => row.name),
    );
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      await client.query(readFileSync(join(dir, file), 'utf8'));
      await client.query('INSERT INTO lt_migration (name) VALUES ($1)', [file]);
      applied.push(file);
    }
    return applied;
  });
}
