import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { LtError } from '../errors.ts';
import { redisConnectionIssues, splitRedisUrls } from '../redis/options.ts';

/**
 * The environment lienthong reads, parsed once at the edge. Unset service URLs mean "the local default":
 * a Kafka broker the project starts itself, Redis and PostgreSQL on 127.0.0.1.
 */
export const EnvSchema = z
  .object({
    /** Comma-separated `host:port` list of an existing Kafka cluster. Unset: start a local broker. */
    KAFKA_BROKERS: z
      .string()
      .optional()
      .transform((value) =>
        value
          ?.split(',')
          .map((broker) => broker.trim())
          .filter(Boolean),
      )
      .pipe(
        z
          .array(z.string().regex(/^[^\s:]+:\d+$/, 'each broker must be host:port'))
          .min(1)
          .optional(),
      ),
    /**
     * One Redis node's `redis://` or `rediss://` URL; with REDIS_CLUSTER=1, a comma-separated list of a Redis
     * Cluster's seed nodes (infra/redis/options.ts checks both).
     */
    REDIS_URL: z.string().min(1).default('redis://127.0.0.1:6379'),
    /** `1`: REDIS_URL names seed nodes of a Redis Cluster. */
    REDIS_CLUSTER: z
      .enum(['0', '1', ''])
      .default('0')
      .transform((value) => value === '1'),
    /** The platform's PostgreSQL (registry, NGDB, agreements). */
    DATABASE_URL: z.string().default('postgresql://postgres@127.0.0.1:5432/postgres'),
    /** An external Confluent-compatible schema registry. Unset: the platform serves its own. */
    SCHEMA_REGISTRY_URL: z.string().url().optional(),
    /** Where fetched jars and local broker data live; never inside the repository. */
    LIENTHONG_HOME: z.string().default(join(homedir(), '.cache', 'lienthong')),
    /**
     * The principal this process connects to Kafka as, overriding the command's own (lt-coordinator for the
     * coordinator, …); its credential is `$LIENTHONG_HOME/security/credentials/<principal>.json`.
     */
    KAFKA_PRINCIPAL: z
      .string()
      .regex(/^(lt-[a-z]+|agency\.[A-Z][A-Z0-9-]*)$/, 'a principal such as lt-coordinator or agency.BCA')
      .optional(),
    /** `1`: plaintext Kafka without credentials — a developer's local broker only; every command says so. */
    LIENTHONG_INSECURE: z
      .enum(['0', '1', ''])
      .default('0')
      .transform((value) => value === '1'),
    /** Days a dead letter is kept (it holds a whole record, so it must not be kept forever). */
    LIENTHONG_DLQ_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
    /**
     * The bearer token `/metrics` of this process's ops port requires (docs/observability.md); unset on a secure
     * ops port: `/metrics` answers 401 to everyone.
     */
    LIENTHONG_METRICS_TOKEN: z.string().min(32, 'LIENTHONG_METRICS_TOKEN must be 32+ characters').optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .superRefine((env, context) => {
    const settings = { url: 'REDIS_URL', cluster: 'REDIS_CLUSTER' } as const;
    for (const issue of redisConnectionIssues({
      urls: splitRedisUrls(env.REDIS_URL),
      cluster: env.REDIS_CLUSTER,
    }))
      context.addIssue({ code: 'custom', path: [settings[issue.setting]], message: issue.message });
  });

export type Env = z.infer<typeof EnvSchema>;

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new LtError('LT_CONFIG_INVALID', `environment is invalid: ${problems.join('; ')}`, {
      details: { problems },
      hint: 'fix or unset the variables named above',
    });
  }
  return parsed.data;
}
