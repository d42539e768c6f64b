import { readEnv } from '../../infra/config/options.ts';
import { listen } from '../../infra/http/server.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { createRegistryServer } from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';

export interface RegistryServeOptions {
  port: number;
  host: string;
  schema: string;
}

/** Serves the Confluent-compatible schema registry from PostgreSQL until Ctrl-C. */
export async function serveRegistry(options: RegistryServeOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema });
  await migrate(pool, 'registry');
  const server = createRegistryServer(new RegistryStore(pool), log);
  const url = await listen(server, options.port, options.host);
  console.log(`schema registry at ${url} (PostgreSQL schema ${options.schema}). Ctrl-C stops it.`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await pool.end();
}
