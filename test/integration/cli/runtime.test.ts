import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '../../../infra/node-flags.ts';
import { uniqueName } from '../../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const stops: (() => void)[] = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

/** Starts `lienthong dictionary serve` as an operator would; resolves once it listens, with its command line. */
async function serveDictionary(env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    [
      'cli/lienthong.js',
      'dictionary',
      'serve',
      '--port',
      '0',
      '--ops-port',
      '0',
      '--schema',
      uniqueName('lt_rt_'),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: inject('services').databaseUrl, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  stops.push(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  await expect.poll(() => output, { timeout: 30_000 }).toContain('Shared Data Dictionary at');
  const commandLine = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  return { child, commandLine, exited, output: () => output };
}

/** Every TypeScript module of the product (not the tests), relative to the repository root. */
function productModules(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? walk(join(dir, entry.name))
        : entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')
          ? [relative(ROOT, join(dir, entry.name))]
          : [],
    );
  return ['infra', 'schemas', 'producers', 'consumers', 'platform', 'cli'].flatMap((top) =>
    walk(join(ROOT, top)),
  );
}

describe('the lienthong command on Node 24', () => {
  it('loads every module under Node itself, not only under the test runner’s transform', () => {
    // vitest rewrites imports; Node's own ESM loader refuses a named import that a CommonJS package (kafkajs)
    // does not declare statically — which broke `topics sync` once while every test passed
    const modules = productModules().filter((path) => path !== 'cli/main.ts'); // main parses argv
    expect(modules.length).toBeGreaterThan(50);
    const script = modules.map((path) => `import './${path}';`).join('\n');
    const loaded = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(loaded.stderr).toBe('');
    expect(loaded.status).toBe(0);
  });

  it('runs TypeScript with no loader, on Node 24', async () => {
    const child = spawn(process.execPath, ['cli/lienthong.js', '--version'], { cwd: ROOT });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    expect(code).toBe(0);
    expect(output).toMatch(/^lienthong \d+\.\d+\.\d+ on Node 24\./);
  });

  it('starts a long-running service with the default heap flags, in the same process, stopped by SIGTERM', async () => {
    const service = await serveDictionary();
    const script = service.commandLine.findIndex((arg) => arg.endsWith('cli/lienthong.js'));
    // node <flags> cli/lienthong.js dictionary serve …: V8 options before the script, the command unchanged
    expect(service.commandLine.slice(1, script)).toEqual(expect.arrayContaining([...SERVICE_NODE_FLAGS]));
    expect(service.commandLine.slice(script + 1, script + 3)).toEqual(['dictionary', 'serve']);
    service.child.kill('SIGTERM'); // the pid the parent knows is the service itself after the re-exec
    expect(await service.exited).toBe(0);
  });

  it('keeps a heap flag the operator set in NODE_OPTIONS', async () => {
    const service = await serveDictionary({ NODE_OPTIONS: '--max-old-space-size=1024' });
    expect(service.commandLine).toContain('--max-semi-space-size=16');
    expect(service.commandLine.some((arg) => arg.startsWith('--max-old-space-size'))).toBe(false);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
  });
});
