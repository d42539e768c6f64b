import pg from 'pg';
import { LtError } from '../errors.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  url: string;
  /** PostgreSQL schema used as search_path: one per component, per agency or per test. */
  schema?: string;
  max?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function quoteIdent(name: string): string {
  if (!SCHEMA_NAME.test(name)) throw new Error(`invalid SQL identifier "${name}"`);
  return `"${name}"`;
}

/** A pool bound to one schema (created if missing), answering with a clear error when the server is down. */
export async function createPool({ url, schema, max = 8 }: PoolOptions): Promise<Pool> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5_000,
    ...(schema ? { options: `-c search_path=${quoteIdent(schema)}` } : {}),
  });
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  });
  // A checked-out client whose connection dies (PostgreSQL restarted) emits 'error' besides failing its
  // query; with no listener that is an uncaught exception that kills the process. The failed query reports it.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  try {
    if (schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    else await pool.query('SELECT 1');
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new LtError(
      'LT_POSTGRES_UNREACHABLE',
      `cannot reach PostgreSQL at ${redactUrl(url)}: ${(cause as Error).message}`,
      {
        cause,
        hint: 'start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set DATABASE_URL',
      },
    );
  }
  return pool;
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** Runs `work` in one transaction; rolls back on any error and rethrows it. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await inClientTransaction(client, work);
  } finally {
    client.release();
  }
}

/**
 * {@link inTransaction} on a client the caller holds (for work that needs one session across transactions,
 * e.g. its temporary tables).
 */
export async function inClientTransaction<T>(
  client: PoolClient,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
