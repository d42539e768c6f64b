import { z } from 'zod';
import { parseYamlFile } from '../../infra/config/yaml-file.ts';
import { LtError } from '../../infra/errors.ts';
import { OpsOptionsSchema } from '../../infra/observability/options.ts';
import { addRedisConnectionIssues, RedisConnectionSchema } from '../../infra/redis/options.ts';

const HostPort = z.string().regex(/^[^\s:]+:\d+$/, 'each broker is host:port');
const SchemaName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a PostgreSQL schema name: lower case, digits, _');

/**
 * An Agent Node's configuration file (YAML). It names one agency and holds that agency's credentials —
 * by reference: secrets are read from the environment variables the file names, never written in it.
 *
 * ```yaml
 * agency: BCA
 * kafka: { brokers: [127.0.0.1:9092] }
 * registry: { url: https://127.0.0.1:8081 }   # caFile: defaults to kafka.caFile (the platform CA)
 * database: { urlEnv: BCA_DATABASE_URL, schema: lt_agent_bca }
 * inputs:
 *   http: { enabled: true, port: 8090, tokens: [{ name: ho-tich, sha256: <64 hex> }] }
 *   outbox: { enabled: true }
 * ops: { port: 9470 }   # /health /ready /metrics over TLS (docs/observability.md)
 * redis: { url: [redis://10.0.0.5:7000, redis://10.0.0.6:7000], cluster: true }   # default: REDIS_URL
 * ```
 */
export const AgentConfigSchema = z
  .object({
    /** The agency this node speaks for; must match `--agency`. */
    agency: z.string().regex(/^[A-Z][A-Z0-9-]*$/, 'agency is an agency code such as "BCA"'),
    kafka: z
      .object({
        /** Default: KAFKA_BROKERS. */
        brokers: z.array(HostPort).min(1).optional(),
        ssl: z.boolean().default(false),
        /** PEM file of the CA to trust (the platform CA; `~/` is the home directory); default: the system's. */
        caFile: z.string().min(1).optional(),
        sasl: z
          .object({
            mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
            username: z.string().min(1),
            /** The environment variable holding the password. */
            passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'passwordEnv names an environment variable'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ ssl: false }),
    registry: z
      .object({
        /** Default: SCHEMA_REGISTRY_URL. */
        url: z.string().url().optional(),
        /** The CA an https registry's certificate is signed by. Default: kafka.caFile (the platform CA). */
        caFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    database: z
      .object({
        /** The environment variable holding the agency database URL. Default: DATABASE_URL. */
        urlEnv: z
          .string()
          .regex(/^[A-Z_][A-Z0-9_]*$/)
          .default('DATABASE_URL'),
        /** Schema of the Agent Node's tables (ledger, outbox, snapshot checkpoints). */
        schema: SchemaName.optional(),
      })
      .strict()
      .default({ urlEnv: 'DATABASE_URL' }),
    publisher: z
      .object({
        maxRecordBytes: z.number().int().min(1_000).max(2_000_000).optional(),
        sendTimeoutMs: z.number().int().min(100).max(300_000).optional(),
        compression: z.enum(['none', 'gzip']).optional(),
      })
      .strict()
      .default({}),
    /** Agreements this agency receives: each is materialized into its own schema `lt_share_<agreement>`. */
    subscriptions: z
      .array(
        z
          .object({
            agreement: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'an agreement id such as "ubnd-hn-citizen"'),
            dataset: z.string().min(1),
          })
          .strict(),
      )
      .default([]),
    /**
     * Redis for the subscriber sinks' dedup: `{ url }` for one node, `{ url: [seed, …], cluster: true }` for a
     * Redis Cluster (infra/redis/options.ts). Default: REDIS_URL and REDIS_CLUSTER; `false` to run on the
     * version guard alone.
     */
    redis: z.union([z.literal(false), RedisConnectionSchema]).optional(),
    inputs: z
      .object({
        http: z
          .object({
            enabled: z.boolean().default(true),
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(0).max(65535).default(8090),
            tokens: z.array(z.object({ name: z.string(), sha256: z.string() }).strict()).default([]),
            maxBodyBytes: z.number().int().positive().optional(),
            maxRecordsPerRequest: z.number().int().positive().optional(),
            /**
             * The agency's own certificate and key (PEM files; `~/` is the home directory). Unset: one the
             * platform CA signs for `host`, made under LIENTHONG_HOME — clients trust the platform CA.
             */
            tls: z
              .object({ certFile: z.string().min(1), keyFile: z.string().min(1) })
              .strict()
              .optional(),
            /** `true`: plaintext HTTP (a developer's machine only); the node says it is insecure. */
            insecure: z.boolean().default(false),
          })
          .strict()
          .optional(),
        outbox: z
          .object({
            enabled: z.boolean().default(true),
            batchSize: z.number().int().positive().optional(),
            pollIntervalMs: z.number().int().positive().optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    /**
     * The ops port of `lienthong agent` (/health, /ready, /metrics): TLS signed by the platform CA unless
     * `insecure`. Default: enabled on 127.0.0.1:9470.
     */
    ops: OpsOptionsSchema.optional(),
  })
  .strict()
  .superRefine((config, context) => {
    if (config.redis) addRedisConnectionIssues(context, config.redis, (setting) => ['redis', setting]);
  });

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Reads and checks an Agent Node config file; refuses one written for another agency. */
export function readAgentConfig(path: string, agency: string): AgentConfig {
  const { value } = parseYamlFile(path, AgentConfigSchema, 'LT_CONFIG_INVALID');
  if (value.agency !== agency) {
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${path} is the configuration of ${value.agency}, not of ${agency}`,
      {
        hint: 'an Agent Node holds one agency’s credentials only: pass that agency’s own file',
      },
    );
  }
  if (value.kafka.sasl && !value.kafka.ssl)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${path}: kafka.sasl without kafka.ssl would send the agency's ${value.kafka.sasl.mechanism === 'plain' ? 'password' : 'records'} in the clear`,
      { hint: 'set kafka.ssl: true (and kafka.caFile to the platform CA certificate); see docs/security.md' },
    );
  if (value.kafka.caFile && !value.kafka.ssl)
    throw new LtError('LT_CONFIG_INVALID', `${path}: kafka.caFile is set but kafka.ssl is off`, {
      hint: 'set kafka.ssl: true to use TLS with that CA',
    });
  if (value.kafka.sasl && !process.env[value.kafka.sasl.passwordEnv]) {
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${path}: kafka.sasl.passwordEnv names ${value.kafka.sasl.passwordEnv}, which is not set`,
      {
        hint: `export ${value.kafka.sasl.passwordEnv}=… before starting the Agent Node`,
      },
    );
  }
  return value;
}
