#!/usr/bin/env node
// The `lienthong` command. This one file is plain JavaScript so that a Node too old to run TypeScript can still
// say what to do; everything it loads is TypeScript that Node 24 runs as written (type stripping, no loader).
const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < REQUIRED_MAJOR) {
  console.error(
    `lienthong needs Node ${REQUIRED_MAJOR} or later; this is Node ${process.versions.node} (${process.execPath}).\n` +
      'Run it through npm, which puts the project’s own Node first on the PATH: `npx lienthong …` or\n' +
      '`npm run lienthong -- …` after `npm ci` (it installs Node 24 from the npm registry as the optional\n' +
      'dependency `node`; `--omit=optional` leaves it out). Or install Node 24 LTS on this machine.',
  );
  process.exit(1);
}

// The command's Node flags (infra/node-flags.ts: heap sizing for a long-running service, one warning off for
// all): Node reads them only at start, so the process replaces itself once with the same command and the flags
// it lacks (same pid, same stdio, so signals and exit codes are unchanged). The marker in the environment makes
// sure that happens at most once, whatever Node reports back; it is removed so child processes start afresh.
const REEXECUTED = 'LIENTHONG_NODE_FLAGS_APPLIED';
if (process.env[REEXECUTED]) delete process.env[REEXECUTED];
else {
  const { missingNodeFlags } = await import('../infra/node-flags.ts');
  const missing = missingNodeFlags(process.argv.slice(2), process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length > 0 && process.execve) {
    process.execve(
      process.execPath,
      [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, [REEXECUTED]: '1' },
    );
  }
}
await import('./main.ts');
