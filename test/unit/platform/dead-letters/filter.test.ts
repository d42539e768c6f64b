import { describe, expect, it } from 'vitest';
import { topicKind, topics } from '../../../../infra/kafka/topics.ts';
import {
  formatDeadLetterAddress,
  parseDeadLetterAddress,
  parseDeadLetterFilter,
} from '../../../../platform/dead-letters/index.ts';
import { loadDictionary } from '../../../../schemas/model/dictionary.ts';

const dictionary = loadDictionary();
const now = new Date('2026-12-02T12:00:00Z');

describe('dead-letter addresses', () => {
  it('reads topic:partition:offset back as it is printed', () => {
    const address = parseDeadLetterAddress('lt.dlq.sink.bhxh:0:00017');
    expect(address).toEqual({ topic: 'lt.dlq.sink.bhxh', partition: 0, offset: '17' });
    expect(formatDeadLetterAddress(address)).toBe('lt.dlq.sink.bhxh:0:17');
  });

  it.each(['lt.dlq.ngdb:0', 'lt.dlq.ngdb:x:1', 'lt.src.population.citizen:0:1', 'lt.dlq.ngdb:0:-1', ''])(
    'refuses %j with the expected form in the hint',
    (text) => {
      expect(() => parseDeadLetterAddress(text)).toThrow(
        expect.objectContaining({
          code: 'LT_ARGUMENT_INVALID',
          hint: expect.stringMatching(/lt\.dlq\.ngdb:0:17/),
        }),
      );
    },
  );
});

describe('topic names read back', () => {
  it('tells every kind of topic and the ids inside it', () => {
    expect(topicKind(topics.source('population.citizen'))).toEqual({
      kind: 'source',
      dataset: 'population.citizen',
    });
    expect(topicKind(topics.share('bhxh-01'))).toEqual({ kind: 'share', agreement: 'bhxh-01' });
    expect(topicKind(topics.deadLetter('ngdb'))).toEqual({ kind: 'dead-letter', stage: 'ngdb' });
    expect(topicKind(topics.deadLetter('sink', 'UBND-HN'))).toEqual({
      kind: 'dead-letter',
      stage: 'sink',
      agency: 'UBND-HN',
    });
    expect(topicKind(topics.redrive('ngdb'))).toEqual({ kind: 'redrive', stage: 'ngdb' });
    expect(topicKind('__consumer_offsets')).toEqual({ kind: 'other' });
  });
});

describe('dead-letter filters', () => {
  it('takes a stage, an agency, a code, a dataset and a time range, durations counted back from now', () => {
    expect(
      parseDeadLetterFilter(
        {
          stage: 'sink',
          agency: 'BHXH',
          code: 'LT_RECORD_INVALID',
          dataset: 'population.citizen',
          since: '6h',
          until: '2026-12-02T11:00:00Z',
        },
        dictionary,
        now,
      ),
    ).toEqual({
      stage: 'sink',
      agency: 'BHXH',
      code: 'LT_RECORD_INVALID',
      dataset: 'population.citizen',
      since: new Date('2026-12-02T06:00:00Z'),
      until: new Date('2026-12-02T11:00:00Z'),
    });
  });

  it.each([
    [{ stage: 'replay' }, /unknown stage "replay"/],
    [{ agency: 'XYZ' }, /unknown agency "XYZ"/],
    [{ stage: 'ngdb', agency: 'BHXH' }, /stage ngdb belongs to the platform/],
    [{ code: 'LT_NOPE' }, /unknown error code "LT_NOPE"/],
    [{ code: 'constructor' }, /unknown error code "constructor"/],
    [{ dataset: 'population.nobody' }, /unknown dataset "population.nobody"/],
    [{ since: 'last week' }, /--since "last week" is neither a time nor a duration/],
    [{ since: '1h', until: '2h' }, /--since is not before --until/],
  ])('refuses %j naming what is wrong', (input, message) => {
    expect(() => parseDeadLetterFilter(input, dictionary, now)).toThrow(message);
  });
});
