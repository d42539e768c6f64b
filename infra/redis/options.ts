import { z } from 'zod';
import { LtError } from '../errors.ts';

/**
 * Where Redis is: one node, or the seed nodes of a Redis Cluster. The same two settings in the environment
 * (`REDIS_URL`, `REDIS_CLUSTER=1`) and in an Agent Node's config file (`redis: { url, cluster: true }`):
 *
 * ```
 * REDIS_URL=redis://10.0.0.5:6379                                       # one node
 * REDIS_URL=redis://10.0.0.5:7000,redis://10.0.0.6:7000 REDIS_CLUSTER=1   # a cluster, from its seeds
 * ```
 *
 * A cluster is always said explicitly, never guessed from the number of URLs: one seed is enough for a
 * cluster (the client learns the others from it), and several URLs without `cluster` are refused.
 */
export interface RedisConnection {
  /** `redis://` or `rediss://` (TLS) URLs; one for a single node, one or more seeds for a cluster. */
  urls: string[];
  /** The URLs are seed nodes of a Redis Cluster. @default false */
  cluster: boolean;
}

/** A comma-separated list (or a list) of URLs, trimmed, empty items dropped. */
export function splitRedisUrls(url: string | readonly string[]): string[] {
  return (typeof url === 'string' ? url.split(',') : [...url]).map((item) => item.trim()).filter(Boolean);
}

/** One problem of a connection setting: which of the two settings, and the rule it breaks. */
export interface RedisConnectionIssue {
  setting: 'url' | 'cluster';
  message: string;
}

/**
 * What is wrong with these settings, if anything. Each URL must be `redis://` or `rediss://` with a host
 * (port 6379 unless given); a cluster's seeds share one scheme and one login (the client uses them for
 * every node it discovers) and name database 0 or none (a cluster has only database 0).
 */
export function redisConnectionIssues({ urls, cluster }: RedisConnection): RedisConnectionIssue[] {
  const issues: RedisConnectionIssue[] = [];
  if (urls.length === 0) return [{ setting: 'url', message: 'names no Redis URL' }];
  const parsed: URL[] = [];
  for (const text of urls) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      issues.push({ setting: 'url', message: `"${text}" is not a URL such as redis://host:6379` });
      continue;
    }
    const where = `${url.protocol}//${url.host}`;
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
      issues.push({ setting: 'url', message: `${where}: the scheme must be redis:// or rediss:// (TLS)` });
    else if (!url.hostname) issues.push({ setting: 'url', message: `"${text}" names no host` });
    else if (!/^(\/\d*)?$/.test(url.pathname))
      issues.push({ setting: 'url', message: `${where}: the path must be a database number, e.g. /0` });
    else if (cluster && !/^(\/0?)?$/.test(url.pathname))
      issues.push({
        setting: 'url',
        message: `${where}: a Redis Cluster has only database 0 (path ${url.pathname})`,
      });
    else parsed.push(url);
  }
  if (!cluster && urls.length > 1)
    issues.push({
      setting: 'url',
      message: `${urls.length} URLs are the seed nodes of a Redis Cluster: say so (REDIS_CLUSTER=1, or redis.cluster: true), or give one URL`,
    });
  if (cluster && parsed.length > 1) {
    const first = parsed[0]!;
    if (parsed.some((url) => url.protocol !== first.protocol))
      issues.push({
        setting: 'url',
        message: 'the seed nodes mix redis:// and rediss://: one cluster is all TLS or none',
      });
    if (parsed.some((url) => url.username !== first.username || url.password !== first.password))
      issues.push({
        setting: 'url',
        message: 'the seed nodes differ in user or password: one cluster has one login',
      });
  }
  return issues;
}

/**
 * `redis:` in an Agent Node's config file: `url` (one URL, a comma-separated list or a YAML list) and
 * `cluster`. The shape only: the file's schema adds {@link redisConnectionIssues} at `redis.url` (a union's
 * branch would hide them behind "Invalid input"), e.g. `redis.url: 2 URLs are the seed nodes of a Redis Cluster`.
 */
export const RedisConnectionSchema = z
  .object({
    /** One node's URL, or a cluster's seed nodes (comma-separated or a list). */
    url: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** `true`: the URLs are seed nodes of a Redis Cluster. @default false */
    cluster: z.boolean().default(false),
  })
  .strict();

/** Adds every problem of `connection` to a zod refinement, each at `path` + the setting's own name. */
export function addRedisConnectionIssues(
  context: z.RefinementCtx,
  connection: { url: string | readonly string[]; cluster: boolean },
  pathOf: (setting: RedisConnectionIssue['setting']) => (string | number)[],
): void {
  for (const issue of redisConnectionIssues({
    urls: splitRedisUrls(connection.url),
    cluster: connection.cluster,
  }))
    context.addIssue({ code: 'custom', path: pathOf(issue.setting), message: issue.message });
}

/** The settings checked, or LT_CONFIG_INVALID naming every problem (for callers that skipped a schema). */
export function checkedRedisConnection(connection: RedisConnection): RedisConnection {
  const issues = redisConnectionIssues(connection);
  if (issues.length > 0)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `Redis connection is invalid: ${issues.map((issue) => `${issue.setting}: ${issue.message}`).join('; ')}`,
      {
        details: { problems: issues.map((issue) => `${issue.setting}: ${issue.message}`) },
        hint: 'REDIS_URL is one redis:// or rediss:// URL, or with REDIS_CLUSTER=1 a comma-separated list of seed nodes',
      },
    );
  return connection;
}
