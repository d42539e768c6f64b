import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const logger = fileURLToPath(new URL('../../../infra/logging/logger.ts', import.meta.url));

describe('where the logs go', () => {
  it('stdout by default; stderr for loggers made after logToStderr (a --json command keeps stdout clean)', () => {
    const script = [
      `import { createLogger, logToStderr } from ${JSON.stringify(logger)};`,
      `createLogger('info').warn('before the switch');`,
      `logToStderr();`,
      `createLogger('info').warn('after the switch');`,
    ].join('\n');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('before the switch');
    expect(run.stdout).not.toContain('after the switch');
    expect(run.stderr).toContain('after the switch');
  });
});
