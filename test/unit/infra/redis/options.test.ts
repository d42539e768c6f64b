import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readEnv } from '../../../../infra/config/options.ts';
import { LtError } from '../../../../infra/errors.ts';
import { createRedis } from '../../../../infra/redis/client.ts';
import { RedisConnectionSchema, redisConnectionIssues } from '../../../../infra/redis/options.ts';
import { readAgentConfig } from '../../../../producers/agent/config.ts';

const messages = (urls: string[], cluster: boolean): string[] =>
  redisConnectionIssues({ urls, cluster }).map((issue) => `${issue.setting}: ${issue.message}`);

describe('the Redis connection settings', () => {
  it('take one URL for one node, and one or more seed nodes for a cluster', () => {
    expect(messages(['redis://127.0.0.1:6379'], false)).toEqual([]);
    expect(messages(['rediss://user:secret@redis.example:6380/2'], false)).toEqual([]);
    expect(messages(['redis://10.0.0.5:7000'], true)).toEqual([]);
    expect(messages(['redis://10.0.0.5:7000', 'redis://10.0.0.6:7000/0'], true)).toEqual([]);
  });

  it('refuse several URLs unless they are said to be a cluster, naming the setting to add', () => {
    expect(messages(['redis://a:7000', 'redis://b:7000'], false)).toEqual([
      'url: 2 URLs are the seed nodes of a Redis Cluster: say so (REDIS_CLUSTER=1, or redis.cluster: true), or give one URL',
    ]);
  });

  it('refuse what is not a redis:// or rediss:// URL with a host', () => {
    expect(messages(['127.0.0.1:6379'], false)).toEqual([
      'url: "127.0.0.1:6379" is not a URL such as redis://host:6379',
    ]);
    expect(messages(['localhost:6379'], false)).toEqual([
      'url: localhost://: the scheme must be redis:// or rediss:// (TLS)',
    ]);
    expect(messages(['http://a:6379'], false)).toEqual([
      'url: http://a:6379: the scheme must be redis:// or rediss:// (TLS)',
    ]);
    expect(messages(['not a url'], true)).toEqual([
      'url: "not a url" is not a URL such as redis://host:6379',
    ]);
    expect(messages(['redis://a:6379/x'], false)).toEqual([
      'url: redis://a:6379: the path must be a database number, e.g. /0',
    ]);
    expect(messages([], true)).toEqual(['url: names no Redis URL']);
  });

  it('refuse a cluster seed naming another database than 0, mixing TLS, or differing in login', () => {
    expect(messages(['redis://a:7000/3'], true)).toEqual([
      'url: redis://a:7000: a Redis Cluster has only database 0 (path /3)',
    ]);
    expect(messages(['redis://a:7000', 'rediss://b:7000'], true)).toEqual([
      'url: the seed nodes mix redis:// and rediss://: one cluster is all TLS or none',
    ]);
    expect(messages(['redis://u:p@a:7000', 'redis://u:q@b:7000'], true)).toEqual([
      'url: the seed nodes differ in user or password: one cluster has one login',
    ]);
  });

  it('read from the environment: REDIS_URL as a comma-separated list with REDIS_CLUSTER=1', () => {
    const env = readEnv({ REDIS_URL: 'redis://a:7000, redis://b:7000', REDIS_CLUSTER: '1' });
    expect(env.REDIS_CLUSTER).toBe(true);
    expect(readEnv({}).REDIS_CLUSTER).toBe(false);
    const refused = (() => {
      try {
        return readEnv({ REDIS_URL: 'redis://a:7000,redis://b:7000' });
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(LtError);
    expect(refused).toMatchObject({
      code: 'LT_CONFIG_INVALID',
      message: expect.stringContaining('REDIS_URL: 2 URLs are the seed nodes of a Redis Cluster'),
    });
    expect(() => readEnv({ REDIS_CLUSTER: 'yes' })).toThrow(/REDIS_CLUSTER/);
  });

  it('read from an Agent Node config file, a YAML list or a comma-separated string, problems with file and line', () => {
    expect(RedisConnectionSchema.parse({ url: ['redis://a:7000', 'redis://b:7000'], cluster: true })).toEqual(
      { url: ['redis://a:7000', 'redis://b:7000'], cluster: true },
    );
    expect(RedisConnectionSchema.parse({ url: 'redis://a:6379' })).toEqual({
      url: 'redis://a:6379',
      cluster: false,
    });
    const dir = mkdtempSync(join(tmpdir(), 'lt-redis-config-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, 'agency: BCA\nredis:\n  url: [redis://a:7000, redis://b:7000]\n');
    expect(() => readAgentConfig(file, 'BCA')).toThrow(
      /agent\.yaml:3: redis\.url: 2 URLs are the seed nodes of a Redis Cluster/,
    );
    writeFileSync(file, 'agency: BCA\nredis:\n  url: [redis://a:7000, redis://b:7000]\n  cluster: true\n');
    expect(readAgentConfig(file, 'BCA').redis).toEqual({
      url: ['redis://a:7000', 'redis://b:7000'],
      cluster: true,
    });
  });

  it('are checked by createRedis too, before any connection is tried', async () => {
    await expect(
      createRedis({ url: 'redis://a:7000,redis://b:7000', keyPrefix: 't:' }),
    ).rejects.toMatchObject({ code: 'LT_CONFIG_INVALID', message: expect.stringContaining('Redis Cluster') });
  });
});
