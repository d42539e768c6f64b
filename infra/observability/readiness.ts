import { Cluster } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { toLtError } from '../errors.ts';
import type { Pool } from '../postgres/pool.ts';
import type { RedisClient } from '../redis/client.ts';

/** One dependency `/ready` checks: its name (`kafka`, `redis`, `postgres`, `registry`) and a cheap call to it. */
export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency answered; throws (or does not resolve in time) when it did not. */
  check(): Promise<unknown>;
  /** Releases what the check holds (a Kafka admin connection). */
  close?(): Promise<void>;
}

/** How one check went, as `/ready` answers it. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** Milliseconds the check took (at most the timeout). */
  ms: number;
  /** Why it failed: the error's code and message, or that it timed out. */
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: CheckResult[];
}

/** Runs every check at once, each bounded by `timeoutMs`; ready when all answered. */
export async function checkReadiness(
  checks: readonly ReadinessCheck[],
  timeoutMs: number,
): Promise<Readiness> {
  const results = await Promise.all(checks.map((one) => runCheck(one, timeoutMs)));
  return { ready: results.every((result) => result.ok), checks: results };
}

async function runCheck(one: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([one.check(), timeout]);
    return { name: one.name, ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const failure = toLtError(error);
    const error_ = failure.code === 'LT_INTERNAL' ? failure.message : `${failure.code}: ${failure.message}`;
    return { name: one.name, ok: false, ms: Math.round(performance.now() - started), error: error_ };
  } finally {
    clearTimeout(timer);
  }
}

/** PostgreSQL answers `SELECT 1` on the pool the process works with. */
export function postgresCheck(pool: Pool, name = 'postgres'): ReadinessCheck {
  return { name, check: () => pool.query('SELECT 1') };
}

/**
 * Redis answers PING on the client the process works with; a Redis Cluster, that it serves every slot
 * (`CLUSTER INFO` says `cluster_state:ok` — a node of a failed cluster still answers PING).
 */
export function redisCheck(redis: RedisClient, name = 'redis'): ReadinessCheck {
  if (!(redis instanceof Cluster)) return { name, check: () => redis.ping() };
  return {
    name,
    check: async () => {
      const info = await redis.cluster('INFO');
      if (!info.includes('cluster_state:ok')) throw new Error('the Redis Cluster does not serve every slot');
    },
  };
}

/**
 * A Kafka broker answers a metadata request (describeCluster), with the process's own client, so its TLS and
 * SASL are checked too. One admin connection, made at the first check and kept.
 */
export function kafkaCheck(kafka: Kafka, name = 'kafka'): ReadinessCheck {
  let admin: Admin | null = null;
  let connecting: Promise<void> | null = null;
  return {
    name,
    check: async () => {
      if (!admin) {
        admin = kafka.admin();
        const made = admin;
        connecting = made.connect().catch(async (error: unknown) => {
          admin = null;
          await made.disconnect().catch(() => undefined);
          throw error;
        });
      }
      await connecting;
      return admin?.describeCluster();
    },
    close: async () => {
      await admin?.disconnect().catch(() => undefined);
      admin = null;
    },
  };
}

/** The registry answers a lookup (its `GET /schemas/ids/1/versions`; "unknown id" is an answer). */
export function registryCheck(
  registry: { subjectsOfSchema(id: number): Promise<unknown> },
  name = 'registry',
): ReadinessCheck {
  return { name, check: () => registry.subjectsOfSchema(1) };
}
