import { describe, expect, it } from 'vitest';
import { missingServiceFlags, SERVICE_NODE_FLAGS } from '../../../infra/node-flags.ts';

describe('Node flags of the long-running services', () => {
  it('gives every service command all the defaults', () => {
    for (const args of [['agent', '--agency', 'BCA'], ['coordinator'], ['ngdb'], ['dictionary', 'serve']])
      expect(missingServiceFlags(args, [], undefined)).toEqual(SERVICE_NODE_FLAGS);
  });

  it('gives short commands none', () => {
    for (const args of [
      [],
      ['--help'],
      ['demo'],
      ['dictionary', 'lint'],
      ['agreement', 'list'],
      ['broker', 'start'],
    ])
      expect(missingServiceFlags(args, [], undefined)).toEqual([]);
  });

  it('leaves out a flag the operator set on the command line or in NODE_OPTIONS, in either spelling', () => {
    expect(missingServiceFlags(['ngdb'], ['--max-old-space-size=2048'], undefined)).toEqual([
      '--max-semi-space-size=16',
    ]);
    expect(missingServiceFlags(['ngdb'], [], '--enable-source-maps --max_semi_space_size=64')).toEqual([
      '--max-old-space-size=384',
    ]);
    expect(missingServiceFlags(['ngdb'], [...SERVICE_NODE_FLAGS], undefined)).toEqual([]);
  });
});
