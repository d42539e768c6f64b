/**
 * Node flags the `lienthong` command starts with (cli/lienthong.js applies them; the benchmarks and the test
 * runner start their processes with the same lists).
 *
 * Every command: kafkajs 2.2.4 schedules its request queue with `throttledUntil - Date.now()`, a negative delay
 * until a broker first throttles; Node 24 warns about it (`TimeoutNegativeWarning`, tulios/kafkajs#1751) and,
 * as Node 20 did silently, waits 1 ms instead. The warning says nothing an operator can act on.
 */
export const COMMAND_NODE_FLAGS: readonly string[] = ['--disable-warning=TimeoutNegativeWarning'];

/**
 * The long-running services (Agent Node, coordinator, NGDB sink, registry) also get V8 heap sizing. Node 24's
 * V8 lets each semi-space of the young generation grow to 32 MiB on a host with a few GiB (Node 20: 16 MiB),
 * and the old generation towards a 4 GiB limit before collecting in earnest: a service held far more memory
 * than it used. These keep peak RSS below Node 20's at a higher throughput (figures in docs/runtime.md).
 */
export const SERVICE_NODE_FLAGS: readonly string[] = [
  ...COMMAND_NODE_FLAGS,
  '--max-semi-space-size=16',
  '--max-old-space-size=384',
];

/** The `lienthong` commands that run until stopped, as the words that start their command line. */
export const SERVICE_COMMANDS: readonly (readonly string[])[] = [
  ['agent'],
  ['coordinator'],
  ['ngdb'],
  ['dictionary', 'serve'],
];

/**
 * What makes two flags the same setting: a size flag by its name (V8 accepts `_` for `-`), so an operator's
 * `--max-old-space-size=2048` replaces the default; any other flag by its whole text (one
 * `--disable-warning=…` does not stand for another).
 */
function setting(flag: string): string {
  const [name, value] = flag.replace(/^--/, '').split('=');
  const normalized = name!.replaceAll('_', '-');
  return normalized.endsWith('-size') ? normalized : `${normalized}=${value ?? ''}`;
}

/** The flags a command should run with. */
export function nodeFlagsFor(args: readonly string[]): readonly string[] {
  const isService = SERVICE_COMMANDS.some((words) => words.every((word, index) => args[index] === word));
  return isService ? SERVICE_NODE_FLAGS : COMMAND_NODE_FLAGS;
}

/**
 * The flags that the command `args`, in a process started with `execArgv` and `NODE_OPTIONS`, still lacks:
 * empty when every one is set already, by us or by the operator (whose value wins).
 */
export function missingNodeFlags(
  args: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const set = new Set(
    [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((arg) => arg.startsWith('--')).map(setting),
  );
  return nodeFlagsFor(args).filter((flag) => !set.has(setting(flag)));
}
