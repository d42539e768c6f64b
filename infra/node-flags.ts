/**
 * V8 heap sizing for the long-running services (Agent Node, coordinator, NGDB sink, registry).
 *
 * Node 24's V8 sizes the young generation from the heap limit, and on a host with a few GiB of memory lets each
 * semi-space grow to 32 MiB where Node 20 stopped at 16 MiB; with the old generation left to grow towards a
 * 4 GiB limit, a service held more memory than it needed. These defaults bound both (figures in
 * docs/runtime.md). A flag the operator sets (on the command line or in NODE_OPTIONS) wins over its default.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--max-old-space-size=384'];

/** The `lienthong` commands that run until stopped, as the words that start their command line. */
export const SERVICE_COMMANDS: readonly (readonly string[])[] = [
  ['agent'],
  ['coordinator'],
  ['ngdb'],
  ['dictionary', 'serve'],
];

/** `--max-old-space-size=384` → `max-old-space-size` (V8 accepts `_` and `-` alike). */
function flagName(flag: string): string {
  return flag.replace(/^--/, '').split('=')[0]!.replaceAll('_', '-');
}

/**
 * The default flags a process started with `execArgv` and `NODE_OPTIONS` still lacks for the command `args`
 * (empty for a command that is not a service, or when every default is already set).
 */
export function missingServiceFlags(
  args: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const isService = SERVICE_COMMANDS.some((words) => words.every((word, index) => args[index] === word));
  if (!isService) return [];
  const set = new Set(
    [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((arg) => arg.startsWith('--')).map(flagName),
  );
  return SERVICE_NODE_FLAGS.filter((flag) => !set.has(flagName(flag)));
}
