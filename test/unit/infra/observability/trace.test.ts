import { describe, expect, it } from 'vitest';
import {
  carryTrace,
  formatTraceparent,
  parseTraceparent,
  TRACEPARENT,
  traceIdFor,
  traceLogFields,
} from '../../../../infra/observability/trace.ts';
import { streamOfTopic, topics } from '../../../../infra/kafka/topics.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const HEADER = `00-${TRACE}-00f067aa0ba902b7-01`;

describe('traceparent (W3C Trace Context, version 00)', () => {
  it('parses a valid header and formats it back unchanged', () => {
    const context = parseTraceparent(HEADER);
    expect(context).toEqual({ traceId: TRACE, spanId: '00f067aa0ba902b7', flags: '01' });
    expect(formatTraceparent(context!)).toBe(HEADER);
  });

  it('refuses all-zero ids, upper case, other versions and other lengths', () => {
    for (const bad of [
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      HEADER.toUpperCase(),
      `01-${TRACE}-00f067aa0ba902b7-01`,
      `00-${TRACE}-00f067aa0ba902b-01`,
      'not a traceparent',
      undefined,
    ])
      expect(parseTraceparent(bad)).toBeNull();
  });

  it('keeps a W3C trace id and maps any other trace text to a stable one', () => {
    expect(traceIdFor(TRACE)).toBe(TRACE);
    const mapped = traceIdFor('outbox-row-17');
    expect(mapped).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIdFor('outbox-row-17')).toBe(mapped);
    expect(traceIdFor('outbox-row-18')).not.toBe(mapped);
  });

  it('carries a source record’s trace onto derived records as a child span', () => {
    const [derived] = carryTrace({ [TRACEPARENT]: Buffer.from(HEADER) }, 'ignored', [
      { key: 'k', value: 'v', headers: { 'lt-agreement': 'a' } },
    ]);
    const context = parseTraceparent(String(derived!.headers![TRACEPARENT]));
    expect(context?.traceId).toBe(TRACE);
    expect(context?.flags).toBe('01');
    expect(context?.spanId).not.toBe('00f067aa0ba902b7');
    expect(derived!.headers!['lt-agreement']).toBe('a');
  });

  it('starts from the envelope’s traceId when the source record has no header', () => {
    const [derived] = carryTrace(undefined, TRACE, [{ value: 'v' }]);
    expect(parseTraceparent(String(derived!.headers![TRACEPARENT]))?.traceId).toBe(TRACE);
  });

  it('binds trace_id for log lines, and nothing without a header', () => {
    expect(traceLogFields({ [TRACEPARENT]: HEADER })).toEqual({ trace_id: TRACE });
    expect(traceLogFields({})).toEqual({});
  });
});

describe('streamOfTopic', () => {
  it('names the dataset of a source topic and the agreement of a share topic, nothing for others', () => {
    expect(streamOfTopic(topics.source('population.citizen'))).toEqual({
      dataset: 'population.citizen',
      agreement: '',
    });
    expect(streamOfTopic(topics.share('ubnd-hn-citizen'))).toEqual({
      dataset: '',
      agreement: 'ubnd-hn-citizen',
    });
    expect(streamOfTopic(topics.deadLetter('ngdb'))).toEqual({ dataset: '', agreement: '' });
    expect(streamOfTopic('other.topic')).toEqual({ dataset: '', agreement: '' });
  });
});
