import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { chunkTopicMessages, messageBytes, producerStateLost } from '../../../infra/kafka/produce.ts';

const message = (n: number, bytes: number) => ({
  key: `k${n}`,
  value: Buffer.alloc(bytes, n % 256),
  headers: { 'lt-trace-id': `t${n}` },
});

describe('produce requests stay under the broker’s size limit', () => {
  it('estimates a record from its key, value and headers', () => {
    expect(messageBytes({ key: 'ab', value: Buffer.alloc(100), headers: { h: 'xyz' } })).toBe(
      32 + 2 + 100 + 4,
    );
    expect(messageBytes({ key: null, value: null })).toBe(32);
  });

  it('splits into consecutive requests under the budget, keeping every message once and in order', () => {
    const a = Array.from({ length: 50 }, (_, n) => message(n, 1_000));
    const b = Array.from({ length: 30 }, (_, n) => message(100 + n, 1_000));
    const requests = chunkTopicMessages(
      [
        { topic: 'a', messages: a },
        { topic: 'b', messages: b },
      ],
      10_000,
    );
    for (const request of requests) {
      const bytes = request.flatMap((t) => t.messages).reduce((sum, m) => sum + messageBytes(m), 0);
      expect(bytes).toBeLessThanOrEqual(10_000);
    }
    expect(requests.length).toBe(Math.ceil(80 / Math.floor(10_000 / messageBytes(a[0]!))));
    const flat = (topic: string) =>
      requests.flatMap((r) => r.filter((t) => t.topic === topic).flatMap((t) => t.messages));
    expect(flat('a')).toEqual(a);
    expect(flat('b')).toEqual(b);
  });

  it('sends a record larger than the budget alone, and nothing for nothing', () => {
    const requests = chunkTopicMessages(
      [{ topic: 'a', messages: [message(1, 10), message(2, 50_000), message(3, 10)] }],
      1_000,
    );
    expect(requests.map((r) => r[0]!.messages.length)).toEqual([1, 1, 1]);
    expect(chunkTopicMessages([{ topic: 'a', messages: [] }], 1_000)).toEqual([]);
  });
});

describe('a producer whose sequence numbers the broker refused', () => {
  // as kafkajs 2.2.4 reports it after its retries (the CI log of the 3-broker fault row): a non-retriable error
  // whose cause is the broker's answer
  const refused = (type: string, code: number) =>
    Object.assign(
      new kafkajs.KafkaJSNonRetriableError('The broker received an out of order sequence number'),
      {
        cause: new kafkajs.KafkaJSProtocolError({ message: type, type, code, retriable: false } as never),
      },
    );

  it('is recognised however kafkajs wrapped the broker’s answer', () => {
    expect(producerStateLost(refused('OUT_OF_ORDER_SEQUENCE_NUMBER', 45))).toBe(true);
    expect(producerStateLost(refused('UNKNOWN_PRODUCER_ID', 59))).toBe(true);
    expect(producerStateLost(refused('INVALID_PRODUCER_EPOCH', 47))).toBe(true);
    expect(
      producerStateLost(new kafkajs.KafkaJSProtocolError({ type: 'OUT_OF_ORDER_SEQUENCE_NUMBER' } as never)),
    ).toBe(true);
  });

  it('is not confused with other failures, which the caller retries with the same producer', () => {
    expect(producerStateLost(refused('NOT_LEADER_OR_FOLLOWER', 6))).toBe(false);
    expect(producerStateLost(new Error('connection refused'))).toBe(false);
    expect(producerStateLost(undefined)).toBe(false);
  });
});
