import { createHash, randomBytes } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { createKafka } from '../../../infra/kafka/client.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { listen } from '../../../infra/http/server.ts';
import {
  createIngestServer,
  type IngestErrorBody,
  type IngestResponse,
  type IngestServerOptions,
} from '../../../producers/http-ingest/index.ts';
import { Publisher, type VersionLedger } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { ChangeEvent, DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  log,
  testAgentDb,
  testKafka,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

const TOKEN = randomBytes(32).toString('hex');
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const TOKENS = [
  { name: 'ho-tich-dien-tu', sha256: sha256(TOKEN) },
  { name: 'cu-tru', sha256: sha256(randomBytes(32).toString('hex')) },
];
const MAX_BODY_BYTES = 64 * 1024;
const MAX_RECORD_BYTES = 2_000;

interface Answer<B> {
  status: number;
  headers: Headers;
  body: B;
}

/** Posts a body as it is (a string) or as JSON, with the token unless told otherwise. */
async function post<B = IngestResponse>(
  url: string,
  body: unknown,
  {
    token = TOKEN as string | null,
    contentType = 'application/json' as string | null,
    authorization,
  }: { token?: string | null; contentType?: string | null; authorization?: string } = {},
): Promise<Answer<B>> {
  const headers: Record<string, string> = {};
  if (contentType !== null) headers['content-type'] = contentType;
  if (authorization !== undefined) headers.authorization = authorization;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as B };
}

const creates = (citizens: DatasetRecord[], version = 1) =>
  citizens.map((after) => ({ op: 'CREATE', version, after }));
const ndjson = (lines: unknown[]): string => `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;

/** A consumer that keeps every decoded event of a topic by event id, from the beginning. */
async function collectEvents(
  kafka: Kafka,
  registry: SchemaRegistry,
  topic: string,
): Promise<{ events: Map<string, ChangeEvent>; consumer: Consumer }> {
  const events = new Map<string, ChangeEvent>();
  const consumer = kafka.consumer({ groupId: uniqueName('lt.test.ingest-') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value === null) return; // a DELETE's tombstone
      const event = (await registry.decode(message.value)) as ChangeEvent;
      events.set(event.eventId, event);
    },
  });
  return { events, consumer };
}

describe('HTTP ingest on the Agent Node', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const topic = topics.source(dataset.id);
  const stops: (() => Promise<unknown>)[] = [];
  let registry: SchemaRegistry;
  let ledger: VersionLedger;
  let publisher: Publisher;
  let base: string;
  let url: string;
  let events: Map<string, ChangeEvent>;
  let seed = 100;
  const citizens = (count: number): DatasetRecord[] => sampleCitizens(count, seed++);

  /** The source topic's end offsets summed over partitions: how many messages it holds. */
  const topicSize = async (name = topic): Promise<number> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(name)).reduce(
        (sum, partition) => sum + Number(partition.high),
        0,
      );
    } finally {
      await admin.disconnect();
    }
  };

  /** Waits until every event id has been read back from the topic; returns those events. */
  const landed = async (eventIds: string[]): Promise<ChangeEvent[]> => {
    const deadline = Date.now() + 20_000;
    while (eventIds.some((id) => !events.has(id)) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    return eventIds.map((id) => {
      const event = events.get(id);
      if (!event) throw new Error(`event ${id} did not reach ${topic} within 20 s`);
      return event;
    });
  };

  const serve = async (options: Partial<IngestServerOptions> = {}): Promise<string> => {
    const app = createIngestServer({
      publisher,
      tokens: TOKENS,
      log,
      maxBodyBytes: MAX_BODY_BYTES,
      ...options,
    });
    const address = await listen(app);
    stops.push(() => app.close());
    return address;
  };

  beforeAll(async () => {
    const services = await testRegistry();
    registry = services.client;
    await publishDictionary(registry, dictionary, 'BCA');
    ledger = (await testAgentDb()).ledger;
    await ensureTopics(kafka, [{ topic, partitions: 3 }]);
    publisher = new Publisher({
      kafka,
      registry,
      dictionary,
      agency: 'BCA',
      ledger,
      log,
      maxRecordBytes: MAX_RECORD_BYTES,
    });
    await publisher.connect();
    stops.push(() => publisher.close());
    base = await serve();
    url = `${base}/v1/datasets/${dataset.id}/changes`;
    const collector = await collectEvents(kafka, registry, topic);
    events = collector.events;
    stops.push(() => collector.consumer.disconnect());
  });

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('answers GET /v1/health with ok, without a token', async () => {
    const response = await fetch(`${base}/v1/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('publishes a JSON array of changes to the source topic and answers 200 with each record’s event id', async () => {
    const people = citizens(5);
    const before = await topicSize();
    const answer = await post(url, creates(people));

    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ dataset: dataset.id, topic, accepted: 5, rejected: 0 });
    expect(answer.body.results).toEqual(
      people.map((person, index) => ({
        index,
        status: 'accepted',
        key: person.personal_id,
        version: 1,
        eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      })),
    );
    expect(await topicSize()).toBe(before + 5);
    const published = await landed(answer.body.results.map((result) => result.eventId!));
    expect(published[2]).toMatchObject({
      op: 'CREATE',
      dataset: dataset.id,
      key: people[2]!.personal_id,
      version: 1,
      sourceAgency: 'BCA',
      after: { personal_id: people[2]!.personal_id, full_name: people[2]!.full_name },
    });
  });

  it('publishes NDJSON one change per line, skipping blank lines and reporting each record’s line', async () => {
    const [first, second, third] = citizens(3);
    const body =
      `${JSON.stringify({ op: 'CREATE', version: 1, after: first, traceId: 'trace-ndjson-1' })}\r\n` +
      `\n` +
      `${JSON.stringify({ op: 'CREATE', version: 1, after: second })}\n` +
      `${JSON.stringify({ op: 'UPDATE', version: 3, after: { ...third!, full_name: 'Lê Thị Mới' } })}\n`;
    const before = await topicSize();
    const answer = await post(url, body, { contentType: 'application/x-ndjson' });

    expect(answer.status).toBe(200);
    expect(answer.body.results.map(({ index, line, status }) => ({ index, line, status }))).toEqual([
      { index: 0, line: 1, status: 'accepted' },
      { index: 1, line: 3, status: 'accepted' },
      { index: 2, line: 4, status: 'accepted' },
    ]);
    expect(await topicSize()).toBe(before + 3);
    const [one, , three] = await landed(answer.body.results.map((result) => result.eventId!));
    expect(one).toMatchObject({ key: first!.personal_id, traceId: 'trace-ndjson-1', op: 'CREATE' });
    expect(three).toMatchObject({ op: 'UPDATE', version: 3, after: { full_name: 'Lê Thị Mới' } });
  });

  it('accepts one change object and a { "changes": [...] } wrapper as JSON bodies', async () => {
    const [alone, wrapped] = citizens(2);
    const single = await post(url, { op: 'CREATE', version: 1, after: alone });
    expect(single.status).toBe(200);
    expect(single.body.results).toEqual([expect.objectContaining({ index: 0, key: alone!.personal_id })]);
    const wrapper = await post(url, { changes: creates([wrapped!]) });
    expect(wrapper.status).toBe(200);
    expect(wrapper.body.results).toEqual([expect.objectContaining({ index: 0, key: wrapped!.personal_id })]);
    await landed([single.body.results[0]!.eventId!, wrapper.body.results[0]!.eventId!]);
  });

  it('refuses a request without a token with 401 and WWW-Authenticate: Bearer', async () => {
    const before = await topicSize();
    const answer = await post<IngestErrorBody>(url, creates(citizens(1)), { token: null });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="lienthong"$/);
    expect(answer.body).toMatchObject({ error: 'LT_UNAUTHORIZED', hint: expect.stringContaining('Bearer') });
    expect(await topicSize()).toBe(before);
  });

  it('refuses an unknown token and a non-bearer Authorization header with 401', async () => {
    const wrong = await post<IngestErrorBody>(url, creates(citizens(1)), {
      token: randomBytes(32).toString('hex'),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="lienthong", error="invalid_token"');
    expect(wrong.body.error).toBe('LT_UNAUTHORIZED');
    // the digest itself is not a token: knowing the configuration does not let anyone in
    const digest = await post<IngestErrorBody>(url, creates(citizens(1)), { token: TOKENS[0]!.sha256 });
    expect(digest.status).toBe(401);
    const basic = await post<IngestErrorBody>(url, creates(citizens(1)), {
      authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
    });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer realm="lienthong", error="invalid_request"');
  });

  it('logs the token’s name with each request and never the token', async () => {
    const lines: string[] = [];
    const captured = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const logged = await serve({ log: captured });
    const path = `${logged}/v1/datasets/${dataset.id}/changes`;
    const wrongToken = randomBytes(32).toString('hex');
    expect((await post(path, creates(citizens(1)))).status).toBe(200);
    expect((await post(path, creates(citizens(1)), { token: wrongToken })).status).toBe(401);

    const text = lines.join('');
    expect(lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ client: 'ho-tich-dien-tu', msg: 'changes received', accepted: 1 }),
    );
    expect(text).toContain('"reason":"unknown"');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(wrongToken);
  });

  it('answers 404 for an unknown dataset, listing the known ones', async () => {
    const answer = await post<IngestErrorBody>(
      `${base}/v1/datasets/population.citizens/changes`,
      creates(citizens(1)),
    );
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe('LT_DATASET_UNKNOWN');
    expect(answer.body.message).toContain('"population.citizens"');
    expect(answer.body.message).toMatch(
      /known datasets: .*\bbusiness\.enterprise\b.*\bpopulation\.citizen\b/,
    );
  });

  it('answers 403 when the Agent Node’s agency (BCA) does not own the dataset (business.enterprise)', async () => {
    expect(dictionary.datasets.get('business.enterprise')?.owner).toBe('BTC');
    const answer = await post<IngestErrorBody>(`${base}/v1/datasets/business.enterprise/changes`, [
      { op: 'DELETE', key: '0101234567', version: 1 },
    ]);
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({
      error: 'LT_NOT_OWNER',
      message: expect.stringContaining('its owner is BTC'),
      hint: expect.stringContaining('single source of truth'),
    });
  });

  it('answers 400 for a malformed JSON body with the parser’s position, line and column', async () => {
    const body = '[\n  {"op": "CREATE", "version": 1,}\n]';
    let parserMessage = '';
    try {
      JSON.parse(body);
    } catch (error) {
      parserMessage = (error as Error).message;
    }
    const position = Number(/at position (\d+)/.exec(parserMessage)?.[1]);
    expect(position).toBe(34);

    const answer = await post<IngestErrorBody>(url, body);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('LT_MALFORMED_INPUT');
    expect(answer.body.message).toBe(
      'the body is not valid JSON: Expected double-quoted property name at position 34 (line 2, column 33)',
    );

    // V8 names no position for an unexpected token; ours is still exact, and the input is not echoed
    const token = await post<IngestErrorBody>(url, '{"op": "CREATE", "after": {"full_name": Nguyễn}}');
    expect(token.status).toBe(400);
    expect(token.body.message).toBe(
      'the body is not valid JSON: Unexpected token "N" at position 40 (line 1, column 41)',
    );
    const latin1 = await post<IngestErrorBody>(url, new Uint8Array([0x5b, 0xe9, 0x5d]));
    expect(latin1.status).toBe(400);
    expect(latin1.body.message).toBe('the body is not valid UTF-8');
    const empty = await post<IngestErrorBody>(url, '');
    expect(empty.status).toBe(400);
    expect(empty.body.message).toContain('Unexpected end of JSON input at position 0');
  });

  it('answers 400 for a JSON body that is neither a change, an array nor { "changes": [...] }, or holds none', async () => {
    for (const body of ['42', 'null', '[]', '{"changes": {}}', '{"changes": [], "partial": true}']) {
      const answer = await post<IngestErrorBody>(url, body);
      expect(answer.status, body).toBe(400);
      expect(answer.body.error, body).toBe('LT_MALFORMED_INPUT');
    }
  });

  it('refuses a malformed NDJSON line as a record that names its line, and publishes none of the batch', async () => {
    const [first, third] = citizens(2);
    const body = `${JSON.stringify(creates([first!])[0])}\n{"op":"CREATE","version":1,"after":{\n${JSON.stringify(creates([third!])[0])}\n`;
    const before = await topicSize();
    const answer = await post(url, body, { contentType: 'application/x-ndjson' });

    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ accepted: 0, rejected: 3 });
    expect(answer.body.results).toEqual([
      expect.objectContaining({ index: 0, line: 1, key: first!.personal_id, code: 'LT_BATCH_REJECTED' }),
      {
        index: 1,
        line: 2,
        status: 'rejected',
        key: null,
        code: 'LT_MALFORMED_INPUT',
        message: "line 2: not valid JSON: Expected property name or '}' at column 37",
      },
      expect.objectContaining({ index: 2, line: 3, key: third!.personal_id, code: 'LT_BATCH_REJECTED' }),
    ]);
    expect(await topicSize()).toBe(before);
  });

  it('refuses a personal ID whose century digit contradicts the birth date, saying why', async () => {
    const [person] = citizens(1);
    const born = String(person!.birth_date);
    const later = `${Number(born.slice(0, 4)) + 100}${born.slice(4)}`; // same yy, next century
    const answer = await post(url, creates([{ ...person!, birth_date: later }]));
    expect(answer.status).toBe(422);
    expect(answer.body.results[0]).toMatchObject({
      status: 'rejected',
      key: person!.personal_id,
      code: 'LT_RECORD_INVALID',
      message: expect.stringContaining(`contradicts birth year ${later.slice(0, 4)}`),
    });
  });

  it('refuses a record missing a required field, one with an unknown field and one with a wrong type', async () => {
    const [missing, unknown, wrong] = citizens(3);
    const { full_name: _dropped, ...withoutName } = missing!;
    const answer = await post(url, {
      changes: [
        { op: 'CREATE', version: 1, after: withoutName },
        { op: 'CREATE', version: 1, after: { ...unknown!, nickname: 'Tí' } },
        { op: 'CREATE', version: 1, after: { ...wrong!, nationalities: 'VN' } },
        { op: 'CREATE', version: '1', after: wrong },
      ],
    });
    expect(answer.status).toBe(422);
    const messages = answer.body.results.map((result) => [result.code, result.message]);
    expect(messages).toEqual([
      ['LT_RECORD_INVALID', expect.stringContaining('full_name:')],
      ['LT_RECORD_INVALID', expect.stringContaining('unknown field(s) "nickname"')],
      ['LT_RECORD_INVALID', expect.stringContaining('nationalities: expected an array')],
      ['LT_RECORD_INVALID', expect.stringContaining('version must be a whole number')],
    ]);
  });

  it('refuses a record whose encoding is larger than the publisher’s maxRecordBytes', async () => {
    const [person] = citizens(1);
    const answer = await post(url, creates([{ ...person!, permanent_address: 'Số 1 '.repeat(500) }]));
    expect(answer.status).toBe(422);
    expect(answer.body.results[0]).toMatchObject({
      code: 'LT_RECORD_TOO_LARGE',
      message: expect.stringContaining(`the limit is ${MAX_RECORD_BYTES}`),
    });
  });

  it('refuses a version that is not above the last one published for the key', async () => {
    const [person] = citizens(1);
    expect((await post(url, creates([person!], 2))).status).toBe(200);
    const before = await topicSize();
    const answer = await post(url, creates([{ ...person!, full_name: 'Cũ Hơn' }], 1));
    expect(answer.status).toBe(422);
    expect(answer.body.results[0]).toMatchObject({
      key: person!.personal_id,
      code: 'LT_VERSION_STALE',
      message: expect.stringContaining('last published version 2'),
      lastPublished: 2,
    });
    expect(await topicSize()).toBe(before);
  });

  it('answers 415 for a content type other than JSON or NDJSON, or a charset other than UTF-8', async () => {
    const body = JSON.stringify(creates(citizens(1)));
    for (const contentType of ['text/csv', 'application/json; charset=iso-8859-1', null]) {
      const answer = await post<IngestErrorBody>(url, body, { contentType });
      expect(answer.status, String(contentType)).toBe(415);
      expect(answer.body).toMatchObject({
        error: 'LT_MALFORMED_INPUT',
        hint: expect.stringContaining('x-ndjson'),
      });
    }
  });

  it('answers 413 for a body larger than maxBodyBytes, after the token check', async () => {
    const body = ndjson(creates(citizens(300)));
    expect(body.length).toBeGreaterThan(MAX_BODY_BYTES);
    const before = await topicSize();
    const answer = await post<IngestErrorBody>(url, body, { contentType: 'application/x-ndjson' });
    expect(answer.status).toBe(413);
    expect(answer.body).toMatchObject({
      error: 'LT_MALFORMED_INPUT',
      message: expect.stringContaining(`${MAX_BODY_BYTES} bytes`),
    });
    expect(await topicSize()).toBe(before);
    const anonymous = await post<IngestErrorBody>(url, body, {
      contentType: 'application/x-ndjson',
      token: null,
    });
    expect(anonymous.status).toBe(401);
  });

  it('answers 413 with the limit for more changes than maxRecordsPerRequest, in JSON or NDJSON, and publishes none of them', async () => {
    const limited = `${await serve({ maxRecordsPerRequest: 5 })}/v1/datasets/${dataset.id}/changes`;
    const before = await topicSize();
    for (const [body, contentType] of [
      [JSON.stringify(creates(citizens(6))), 'application/json'],
      [ndjson(creates(citizens(6))), 'application/x-ndjson'],
    ] as const) {
      const answer = await post<IngestErrorBody>(limited, body, { contentType });
      expect(answer.status, contentType).toBe(413);
      expect(answer.body).toMatchObject({
        error: 'LT_MALFORMED_INPUT',
        message: 'the request holds 6 changes; this Agent Node accepts at most 5 per request',
        hint: expect.stringContaining('at most 5'),
      });
    }
    const atTheLimit = await post(limited, JSON.stringify(creates(citizens(5))));
    expect(atTheLimit.status).toBe(200);
    await expect.poll(topicSize, { timeout: 20_000 }).toBe(before + 5);
  });

  it('publishes none of an all-or-nothing batch in which one record is refused', async () => {
    const people = citizens(4);
    const before = await topicSize();
    const answer = await post(
      url,
      creates([people[0]!, people[1]!, { ...people[2]!, gender: 'X' }, people[3]!]),
    );
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ accepted: 0, rejected: 4 });
    expect(answer.body.results.map((result) => result.code)).toEqual([
      'LT_BATCH_REJECTED',
      'LT_BATCH_REJECTED',
      'LT_RECORD_INVALID',
      'LT_BATCH_REJECTED',
    ]);
    expect(await topicSize()).toBe(before);
    // nothing was recorded as published: the same records go through once corrected
    const retry = await post(url, creates(people));
    expect(retry.status).toBe(200);
  });

  it('with ?partial=true publishes the good records and refuses only the bad ones, NDJSON line included', async () => {
    const people = citizens(3);
    const body =
      `${JSON.stringify(creates([people[0]!])[0])}\n` +
      `not json\n` +
      `${JSON.stringify(creates([{ ...people[1]!, gender: 'X' }])[0])}\n` +
      `${JSON.stringify(creates([people[2]!])[0])}\n`;
    const before = await topicSize();
    const answer = await post(`${url}?partial=true`, body, { contentType: 'application/x-ndjson' });

    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ accepted: 2, rejected: 2 });
    expect(answer.body.results.map(({ line, status, code }) => ({ line, status, code }))).toEqual([
      { line: 1, status: 'accepted', code: undefined },
      { line: 2, status: 'rejected', code: 'LT_MALFORMED_INPUT' },
      { line: 3, status: 'rejected', code: 'LT_RECORD_INVALID' },
      { line: 4, status: 'accepted', code: undefined },
    ]);
    expect(answer.body.results[1]!.message).toMatch(/^line 2: not valid JSON: /);
    expect(await topicSize()).toBe(before + 2);
    const published = await landed([answer.body.results[0]!.eventId!, answer.body.results[3]!.eventId!]);
    expect(published.map((event) => event.key)).toEqual([people[0]!.personal_id, people[2]!.personal_id]);
  });

  it('answers 400 for a partial that is not true or false, and for an unknown query parameter', async () => {
    const yes = await post<IngestErrorBody>(`${url}?partial=yes`, creates(citizens(1)));
    expect(yes.status).toBe(400);
    expect(yes.body.message).toContain('partial must be true or false');
    const typo = await post<IngestErrorBody>(`${url}?partail=true`, creates(citizens(1)));
    expect(typo.status).toBe(400);
    expect(typo.body.message).toContain('partail');
  });

  it('answers 503 with Retry-After and a retriable error when the broker cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    const unreachable = new Publisher({
      kafka: createKafka({
        brokers: [`127.0.0.1:${port}`],
        clientId: uniqueName('test-down-'),
        log,
        overrides: { connectionTimeout: 500, retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 } },
      }),
      registry,
      dictionary,
      agency: 'BCA',
      ledger,
      log,
      sendTimeoutMs: 2_000,
    });
    await expect(unreachable.connect()).rejects.toThrow();
    const down = await serve({ publisher: unreachable });
    const answer = await post<IngestErrorBody>(
      `${down}/v1/datasets/${dataset.id}/changes`,
      creates(citizens(1)),
    );
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(answer.body).toMatchObject({ error: 'LT_PUBLISH_FAILED', hint: expect.stringContaining('retry') });
  });

  it('answers 503 within the publisher’s bounded wait when the broker does not acknowledge', async () => {
    // a dataset whose topic was never created: the broker answers, but never takes the records
    const missing = isolatedDataset(dictionary, 'population.citizen');
    await publishDictionary(registry, missing.dictionary, 'BCA');
    const stuck = new Publisher({
      kafka,
      registry,
      dictionary: missing.dictionary,
      agency: 'BCA',
      ledger,
      log,
      sendTimeoutMs: 2_000,
    });
    await stuck.connect();
    stops.push(() => stuck.close());
    const server = await serve({ publisher: stuck });
    const answer = await post<IngestErrorBody>(
      `${server}/v1/datasets/${missing.dataset.id}/changes`,
      creates(citizens(1)),
    );
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(answer.body).toMatchObject({
      error: 'LT_PUBLISH_FAILED',
      // the partition count is read before sending (one partition per request), and the broker says why
      message: expect.stringContaining('not acknowledged: This server does not host this topic-partition'),
    });
  });
});
