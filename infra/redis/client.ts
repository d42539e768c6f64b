import { Cluster, Redis } from 'ioredis';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { checkedRedisConnection, splitRedisUrls } from './options.ts';

export type { Cluster, Redis };

/**
 * The client every user of Redis takes: one node (`Redis`) or a Redis Cluster (`Cluster`). Both take the same
 * commands; a command's keys must then hash to one slot (a hash tag `{…}` or one key per command), which every
 * user here keeps (docs/sink.md, "Redis Cluster").
 */
export type RedisClient = Redis | Cluster;

export interface RedisOptions {
  /**
   * One node's `redis://` or `rediss://` URL; with {@link cluster}, the seed nodes of a Redis Cluster
   * (comma-separated, or a list). Checked (infra/redis/options.ts); LT_CONFIG_INVALID when malformed.
   */
  url: string | readonly string[];
  /** `true`: `url` names seed nodes of a Redis Cluster, and the client is an ioredis `Cluster`. @default false */
  cluster?: boolean;
  /** Every key this client writes starts with it: one per deployment, per test. */
  keyPrefix: string;
  /**
   * What a Redis that does not answer at start means: `fail` (LT_REDIS_UNREACHABLE), or `degrade`: a warning on
   * `log`, and the client keeps reconnecting in the background while its users run without it (the sinks'
   * version guard keeps them correct; Redis only saves work). For a cluster, "answers" means every slot is
   * served (`cluster_state:ok`). @default 'fail'
   */
  whenUnreachable?: 'fail' | 'degrade';
  /** Where `degrade` says so. */
  log?: Logger;
}

const CONNECT_TIMEOUT_MS = 3_000;
/** Per command: retries of one whose connection broke, before it fails (no offline queue keeps it either). */
const MAX_RETRIES_PER_REQUEST = 2;
const reconnectDelay = (attempt: number): number => Math.min(attempt * 200, 2_000);

/** `redis://host:port` of each URL, without user or password: what messages and logs may show. */
function shown(urls: readonly string[]): string {
  return urls
    .map((text) => {
      const url = new URL(text);
      return `${url.protocol}//${url.host}`;
    })
    .join(',');
}

function clusterClient(urls: readonly string[], keyPrefix: string): Cluster {
  const seeds = urls.map((text) => new URL(text));
  const first = seeds[0]!;
  return new Cluster(
    seeds.map((url) => ({ host: url.hostname, port: Number(url.port || 6379) })),
    {
      keyPrefix,
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      redisOptions: {
        connectTimeout: CONNECT_TIMEOUT_MS,
        maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
        ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
        ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
      },
    },
  );
}

/** Rejects after `ms`: a cluster whose slots are not all served keeps its client connecting, never failing. */
async function within<T>(ms: number, call: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(what)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    call.catch(() => undefined);
  }
}

/** Connects eagerly so that a Redis that is down is reported at start, not at the first event. */
export async function createRedis(options: RedisOptions & { cluster?: false }): Promise<Redis>;
export async function createRedis(options: RedisOptions & { cluster: true }): Promise<Cluster>;
export async function createRedis(options: RedisOptions): Promise<RedisClient>;
export async function createRedis({
  url,
  cluster = false,
  keyPrefix,
  whenUnreachable = 'fail',
  log,
}: RedisOptions): Promise<RedisClient> {
  const { urls } = checkedRedisConnection({ urls: splitRedisUrls(url), cluster });
  const where = shown(urls);
  const redis: RedisClient = cluster
    ? clusterClient(urls, keyPrefix)
    : new Redis(urls[0]!, {
        keyPrefix,
        lazyConnect: true,
        connectTimeout: CONNECT_TIMEOUT_MS,
        maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
        enableOfflineQueue: false,
        retryStrategy: reconnectDelay,
      });
  redis.on('error', () => {
    /* reported through command failures; the sink degrades to the version guard */
  });
  try {
    await within(
      2 * CONNECT_TIMEOUT_MS,
      redis.connect(),
      cluster
        ? 'the cluster did not become ready (are all its slots served? CLUSTER INFO says cluster_state)'
        : 'no answer',
    );
    await redis.ping();
  } catch (cause) {
    const what = cluster ? 'Redis Cluster' : 'Redis';
    if (whenUnreachable === 'degrade') {
      log?.warn(
        { url: where, cluster, err: cause },
        'Redis is unreachable at start: running on the version guard alone, reconnecting in the background',
      );
      return redis; // ioredis retries the connection by its retry strategy; commands fail fast meanwhile
    }
    redis.disconnect();
    throw new LtError(
      'LT_REDIS_UNREACHABLE',
      `cannot reach ${what} at ${where}: ${(cause as Error).message}`,
      {
        cause,
        hint: cluster
          ? 'start the cluster (every slot served: redis-cli --cluster check <node>) or fix REDIS_URL'
          : 'start Redis (redis-server --daemonize yes --port 6379 --save "") or set REDIS_URL',
      },
    );
  }
  return redis;
}
