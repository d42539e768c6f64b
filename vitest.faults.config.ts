import { defineConfig } from 'vitest/config';
import { COMMAND_NODE_FLAGS } from './infra/node-flags.ts';

// The fault suite (test/faults/): it starts its own Kafka, Redis and PostgreSQL, stops and kills them, and
// runs one fault after another on one machine's two cores, so nothing runs in parallel.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    execArgv: [...COMMAND_NODE_FLAGS],
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
