import { Command, CommanderError } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { exitOverrideEverywhere, reportFailure } from '../../../cli/exit.ts';
import { LtError } from '../../../infra/errors.ts';

describe('the exit of the lienthong command', () => {
  it('exits 2 for a usage error of commander, 0 after help or version', () => {
    expect(
      reportFailure(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")),
    ).toBe(2);
    expect(reportFailure(new CommanderError(1, 'commander.help', '(outputHelp)'))).toBe(2);
    expect(reportFailure(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    expect(reportFailure(new CommanderError(0, 'commander.version', '1.0.0'))).toBe(0);
  });

  it('prints an LtError with its hint and exits with its code', () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const error = new LtError('LT_KAFKA_UNREACHABLE', 'cannot reach Kafka', { hint: 'start it' });
      expect(reportFailure(error)).toBe(4);
      expect(printed).toHaveBeenCalledWith(
        '\nlienthong: LT_KAFKA_UNREACHABLE: cannot reach Kafka\n  → start it',
      );
    } finally {
      printed.mockRestore();
    }
  });

  it('exits 4 for a kafkajs connection failure no command translated', () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const cause = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'), {
        name: 'KafkaJSConnectionError',
      });
      const retried = Object.assign(new Error(cause.message, { cause }), {
        name: 'KafkaJSNumberOfRetriesExceeded',
      });
      expect(reportFailure(retried)).toBe(4);
      expect(printed.mock.calls[0]?.[0]).toContain(
        'LT_KAFKA_UNREACHABLE: cannot reach Kafka: Connection error',
      );
    } finally {
      printed.mockRestore();
    }
  });

  it('makes a command added with addCommand throw a usage error instead of exiting', async () => {
    const program = new Command('lienthong');
    const group = new Command('group');
    group.command('list').action(() => undefined);
    program.addCommand(group);
    exitOverrideEverywhere(program);
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    group.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    group.commands[0]!.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    const refused = await program
      .parseAsync(['group', 'list', '--nope'], { from: 'user' })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CommanderError);
    expect(reportFailure(refused)).toBe(2);
  });
});
