import { defineConfig } from 'vitest/config';
import { COMMAND_NODE_FLAGS } from './infra/node-flags.ts';

// Integration and e2e tests share one local broker started by the global setup; each test makes its own
// topics, PostgreSQL schema and Redis key prefix, so files may run in parallel.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/faults/**', '**/node_modules/**'], // the fault suite has its own config and script
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    execArgv: [...COMMAND_NODE_FLAGS],
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
