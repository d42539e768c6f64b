import { describe, expect, it } from 'vitest';
import { COMMAND_NODE_FLAGS, missingNodeFlags, SERVICE_NODE_FLAGS } from '../../../infra/node-flags.ts';

describe('Node flags of the lienthong command', () => {
  it('gives every long-running service the heap defaults and the command flags', () => {
    for (const args of [['agent', '--agency', 'BCA'], ['coordinator'], ['ngdb'], ['dictionary', 'serve']])
      expect(missingNodeFlags(args, [], undefined)).toEqual(SERVICE_NODE_FLAGS);
    expect(SERVICE_NODE_FLAGS).toEqual(expect.arrayContaining([...COMMAND_NODE_FLAGS]));
  });

  it('gives short commands only the command flags', () => {
    for (const args of [
      [],
      ['--help'],
      ['demo'],
      ['dictionary', 'lint'],
      ['agreement', 'list'],
      ['broker', 'start'],
    ])
      expect(missingNodeFlags(args, [], undefined)).toEqual(COMMAND_NODE_FLAGS);
  });

  it('leaves out a size the operator set on the command line or in NODE_OPTIONS, in either spelling', () => {
    expect(
      missingNodeFlags(['ngdb'], [...COMMAND_NODE_FLAGS, '--max-old-space-size=2048'], undefined),
    ).toEqual(['--max-semi-space-size=16']);
    expect(
      missingNodeFlags(
        ['ngdb'],
        [],
        `${COMMAND_NODE_FLAGS.join(' ')} --enable-source-maps --max_semi_space_size=64`,
      ),
    ).toEqual(['--max-old-space-size=384']);
  });

  it('adds nothing once every flag is set, so the re-started process does not start again', () => {
    expect(missingNodeFlags(['ngdb'], [...SERVICE_NODE_FLAGS], undefined)).toEqual([]);
    expect(missingNodeFlags(['demo'], [...COMMAND_NODE_FLAGS], undefined)).toEqual([]);
  });

  it('does not take another disabled warning for this one', () => {
    expect(missingNodeFlags(['demo'], ['--disable-warning=DEP0040'], undefined)).toEqual(COMMAND_NODE_FLAGS);
  });
});
