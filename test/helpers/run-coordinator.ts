/**
 * Runs the coordinator as its own process, for tests that SIGKILL it mid-batch:
 *
 *   LT_DATABASE_URL=… LT_PLATFORM_SCHEMA=t_abc KAFKA_BROKERS=… LT_REGISTRY_URL=http://… \
 *   LT_DATASET=tabc.citizen LT_DATASET_FROM=population.citizen LT_GROUP=lt.coordinator.x \
 *   node test/helpers/run-coordinator.ts
 *
 * The agreements are those of the platform schema (AgreementStore). Optional: LT_SESSION_TIMEOUT_MS (how soon
 * another coordinator of the group takes the partitions of one killed). Logs go to stdout as pino JSON lines
 * (`"msg":"coordinator running"` once started); on SIGTERM/SIGINT it stops cleanly.
 */
import { z } from 'zod';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { AgreementStore, SYSTEM_ACTOR } from '../../platform/agreements/index.ts';
import { Coordinator } from '../../platform/coordinator/index.ts';
import {
  ChildEnvSchema,
  childClients,
  childDataset,
  runChild,
  schemaName,
  stopOnSignal,
} from './child-process.ts';

const EnvSchema = ChildEnvSchema.extend({
  LT_PLATFORM_SCHEMA: schemaName('LT_PLATFORM_SCHEMA'),
  LT_GROUP: z.string().min(1),
  LT_POSITION_CHECK_MS: z.coerce.number().int().positive().default(2_000),
  /** How soon another coordinator of the group takes over after this one is killed. */
  LT_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
});

runChild(async () => {
  const env = EnvSchema.parse(process.env);
  const log = createLogger(env.LOG_LEVEL);
  const { dictionary } = childDataset(env);
  const pool = await createPool({ url: env.LT_DATABASE_URL, schema: env.LT_PLATFORM_SCHEMA, max: 6 });
  await migrate(pool, 'platform');
  const store = new AgreementStore(pool, dictionary);
  const coordinator = new Coordinator({
    ...childClients(env, 'coordinator', log),
    dictionary,
    pool,
    loadAgreements: () => store.list({ dataset: env.LT_DATASET }),
    groupId: env.LT_GROUP,
    refreshMs: 500,
    resync: async (id, reason) => void (await store.resync(id, reason, SYSTEM_ACTOR)),
    positionCheckMs: env.LT_POSITION_CHECK_MS,
    ...(env.LT_SESSION_TIMEOUT_MS === undefined ? {} : { sessionTimeoutMs: env.LT_SESSION_TIMEOUT_MS }),
    log,
  });
  await coordinator.start();
  log.info('coordinator running');
  stopOnSignal(async () => {
    await coordinator.stop();
    log.info({ stats: coordinator.stats }, 'coordinator stats');
    await pool.end();
  });
  const failure = await coordinator.failed;
  log.error({ err: failure }, 'coordinator stopped reading');
  process.exit(1);
});
