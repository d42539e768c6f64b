import { quoteIdent, type PoolClient } from '../../infra/postgres/pool.ts';
import type { HistoryTable } from '../../schemas/postgres/history.ts';

/** The schemas of one rebuild: the live copy, the shadow it builds, and where the replaced copy is kept. */
export interface RebuildSchemas {
  live: string;
  /** `<live>_rebuild`: dropped and created empty at the start of every rebuild. */
  shadow: string;
  /** `<live>_previous`: the tables the last swap replaced, kept until the next swap. */
  previous: string;
}

export function rebuildSchemas(live: string): RebuildSchemas {
  const schemas = { live, shadow: `${live}_rebuild`, previous: `${live}_previous` };
  quoteIdent(schemas.shadow); // throws for a name PostgreSQL would truncate (over 63 characters)
  quoteIdent(schemas.previous);
  return schemas;
}

/** The tables of the datasets rebuilt, history before current: the order the NGDB sink's transaction locks them. */
function tablesInLockOrder(tables: readonly HistoryTable[]): string[] {
  return [...tables]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((table) => [table.name, table.current.name]);
}

/**
 * Blocks writes to the live tables (reads go on) until the transaction ends; waits for the live sink's
 * transaction in flight. Taken in the live sink's own order, so the two cannot deadlock.
 */
export async function fenceLiveTables(
  client: PoolClient,
  schemas: RebuildSchemas,
  tables: readonly HistoryTable[],
): Promise<void> {
  const names = tablesInLockOrder(tables).map((name) => `${quoteIdent(schemas.live)}.${quoteIdent(name)}`);
  for (const name of names) await client.query(`LOCK TABLE ${name} IN EXCLUSIVE MODE`);
}

/**
 * Inside the fencing transaction: moves the live tables to `<live>_previous` (emptied first) and the shadow
 * tables into the live schema, under the same names. Nothing else changes: the live sink's pool finds the
 * tables by name through its search_path, and a statement of it waiting on the fence resolves the name again
 * once the lock is granted, so it writes into the swapped tables.
 */
export async function swapTables(
  client: PoolClient,
  schemas: RebuildSchemas,
  tables: readonly HistoryTable[],
): Promise<void> {
  const { live, shadow, previous } = {
    live: quoteIdent(schemas.live),
    shadow: quoteIdent(schemas.shadow),
    previous: quoteIdent(schemas.previous),
  };
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${previous}`);
  const names = tablesInLockOrder(tables).map(quoteIdent);
  for (const name of names) await client.query(`DROP TABLE IF EXISTS ${previous}.${name}`);
  for (const name of names) await client.query(`ALTER TABLE ${live}.${name} SET SCHEMA ${previous}`);
  for (const name of names) await client.query(`ALTER TABLE ${shadow}.${name} SET SCHEMA ${live}`);
}
