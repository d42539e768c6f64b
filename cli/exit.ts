import { CommanderError, type Command } from 'commander';
import { describeError, ExitCodes, exitCodeOf } from '../infra/errors.ts';
import { isKafkaJsError, kafkaFailure } from '../infra/kafka/failures.ts';

/**
 * Makes `command` and every command under it — however it was added (`.command()` or `.addCommand()`) — throw
 * a CommanderError instead of calling process.exit, so every outcome ends in {@link reportFailure}.
 */
export function exitOverrideEverywhere(command: Command): void {
  command.exitOverride();
  command.commands.forEach(exitOverrideEverywhere);
}

/**
 * The exit code after `error` (docs/cli.md): 0 after `--help` or `--version`, 2 for any other of commander's
 * own refusals (an unknown command or flag, a missing or malformed argument — commander printed it already),
 * else the error's own (exitCodeOf), printed first as what went wrong and what to do next. A kafkajs error no
 * command translated is translated here (infra/kafka/failures.ts): an unreachable broker exits 4, not 1.
 */
export function reportFailure(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCodes.ok : ExitCodes.usage;
  const failure = isKafkaJsError(error) ? kafkaFailure(error) : error;
  console.error(`\nlienthong: ${describeError(failure)}`);
  return exitCodeOf(failure);
}
