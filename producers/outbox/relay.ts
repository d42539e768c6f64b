import { createHash } from 'node:crypto';
import type { IHeaders, Message, Producer } from 'kafkajs';
import pg from 'pg';
import { deterministicUuidV7 } from '../../infra/ids.ts';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import { deadLetterMessage } from '../../infra/kafka/dead-letter.ts';
import { sendBounded } from '../../infra/kafka/produce.ts';
import { topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { RecordOutcome } from '../publisher/index.ts';
import { outboxRelaySettings, type OutboxRelayOptions, type OutboxRelaySettings } from './options.ts';

/** What a relay is doing: publishing (it holds the lock), waiting for the lock, or not running. */
export type RelayRole = 'leader' | 'standby' | 'stopped';

/** Counters since start; rows are counted once their cycle committed. */
export interface OutboxRelayStats {
  /** Rows published and marked `published_at`. */
  published: number;
  /** Rows refused, sent to `lt.dlq.ingest` and marked `rejected_at`. */
  rejected: number;
  /** Rows found published by an earlier attempt that crashed before marking them; marked now. */
  alreadyPublished: number;
  /** Committed cycles that handled at least one row. */
  batches: number;
  /** Cycles rolled back (broker, registry or database unavailable); each was retried after a backoff. */
  failedCycles: number;
}

/** The DLQ stage of records refused where they enter the platform. */
const DLQ_STAGE = 'ingest';
const NOTIFY_CHANNEL = 'lt_outbox';
const FIRST_BACKOFF_MS = 250;

/** One pending `lt_outbox` row as the relay reads it. */
interface OutboxRow {
  id: string;
  dataset: string;
  op: 'CREATE' | 'UPDATE' | 'DELETE' | 'SNAPSHOT';
  key: string;
  version: string;
  payload: unknown;
  trace_id: string | null;
  created_at: Date;
}

/** What the relay decided for one row of a cycle. */
type Verdict =
  | { status: 'published' }
  | { status: 'already-published' }
  | { status: 'rejected'; code: ErrorCode; message: string; lastPublished?: number };

/**
 * The deterministic eventId of an outbox row: a UUIDv7 whose timestamp is the row's `created_at` and whose
 * random bits are the first 16 bytes of SHA-256(`<agency>/<schema>/<id>`). Every attempt to publish the
 * row, by any relay on any host, gives the same id, so downstream dedup recognises a re-publish.
 */
export function outboxEventId(agency: string, schema: string, id: string, createdAt: Date): string {
  return deterministicUuidV7(createdAt, `${agency}/${schema}/${id}`);
}

/** The advisory lock key of one outbox: 64 bits of SHA-256 over its schema name, the same on every host. */
export function outboxLockKey(schema: string): string {
  return createHash('sha256')
    .update(`lienthong/outbox-relay/${schema}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

/**
 * The transactional outbox relay (DESIGN.md §2: "outbox relay"). An agency system writes its business change
 * and one `lt_outbox` row in the same transaction; the relay publishes the rows through the Agent Node's
 * publisher, in id order, and marks each one only after the broker acknowledged it.
 *
 * - One relay per outbox publishes at a time: the leader holds a session advisory lock
 *   ({@link outboxLockKey}) on a dedicated connection, and runs its cycles on that same connection, so a
 *   leader whose connection died can no longer commit. A standby tries the lock every `pollIntervalMs`.
 * - `LISTEN lt_outbox` (a second dedicated connection) wakes the leader; a poll every `pollIntervalMs`
 *   catches anything missed.
 * - A cycle, in one transaction: lock the oldest pending rows (`FOR UPDATE`), publish runs of one dataset
 *   with `partial: true`, mark the accepted rows `published_at`, send the refused ones to `lt.dlq.ingest`
 *   and mark them `rejected_at`, commit. A failure rolls the whole cycle back; it is retried after a
 *   bounded backoff, with a warning logged once per outage.
 * - Rows a crashed attempt published but could not mark come back refused as stale by the version ledger;
 *   the relay recognises them (`settleStale`, docs/outbox-relay.md) and marks them published.
 */
export class OutboxRelay {
  private readonly settings: OutboxRelaySettings;
  private log: Logger;
  private readonly dlq: Producer;
  private dlqConnected = false;

  private schema = '';
  private lockKey = '';
  private session: pg.Client | null = null;
  private sessionAlive = false;
  private listener: pg.Client | null = null;
  private listenerRetryAt = 0;
  /** After losing its session, a relay leaves the lock to a standby for one poll interval. */
  private lockRetryAt = 0;

  private currentRole: RelayRole = 'stopped';
  private stopping = false;
  private loop: Promise<void> | null = null;
  private waker: { done: () => void; wakeable: boolean } | null = null;
  private wakePending = false;
  private cycleSeq = 0;
  private drainWaiters: { since: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  private readonly counters: OutboxRelayStats = {
    published: 0,
    rejected: 0,
    alreadyPublished: 0,
    batches: 0,
    failedCycles: 0,
  };

  private readonly options: OutboxRelayOptions;

  constructor(options: OutboxRelayOptions) {
    this.options = options;
    this.settings = outboxRelaySettings(options);
    this.log = options.log.child({ component: 'outbox-relay', agency: options.agency });
    this.dlq = options.kafka.producer({ allowAutoTopicCreation: false });
  }

  /** A copy of the counters. */
  get stats(): OutboxRelayStats {
    return { ...this.counters };
  }

  get role(): RelayRole {
    return this.currentRole;
  }

  /**
   * Finds the outbox (the schema of `lt_outbox` on the pool's search_path), makes one attempt to take the
   * lock, and keeps running in the background: afterwards {@link role} is `leader` or `standby`.
   */
  async start(): Promise<void> {
    if (this.loop) throw new Error('the outbox relay is already started');
    this.schema = await this.findOutbox();
    this.lockKey = outboxLockKey(this.schema);
    this.log = this.options.log.child({
      component: 'outbox-relay',
      agency: this.options.agency,
      schema: this.schema,
    });
    this.stopping = false;
    this.currentRole = 'standby';
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
    this.loop = this.run(firstAttempt);
    await attempted;
  }

  /**
   * Lets the running cycle finish (or fail), releases the lock and closes the connections. A standby takes
   * over within its `pollIntervalMs`.
   */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.stopping = true;
    this.wake(false);
    await this.loop;
    this.loop = null;
    await this.closeSession();
    await this.closeListener();
    if (this.dlqConnected) await this.dlq.disconnect().catch(() => undefined);
    this.dlqConnected = false;
    this.currentRole = 'stopped';
    for (const waiter of this.drainWaiters.splice(0)) waiter.reject(new Error('the outbox relay stopped'));
    this.log.info('outbox relay stopped');
  }

  /**
   * Resolves once a cycle that began after this call found no pending row: every row committed before the
   * call has then been published or rejected. Wakes the leader to look now. Rejects after `timeoutMs`
   * (a standby never drains) or on stop.
   */
  drained(timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = {
        since: this.cycleSeq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((other) => other !== waiter);
        reject(new Error(`the outbox was not drained within ${timeoutMs} ms (role: ${this.currentRole})`));
      }, timeoutMs);
      this.drainWaiters.push(waiter);
      this.wake(true);
    });
  }

  private async findOutbox(): Promise<string> {
    try {
      const { rows } = await this.options.pool.query<{ schema: string }>(
        `SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = to_regclass('lt_outbox')`,
      );
      const schema = rows[0]?.schema;
      if (schema) return schema;
    } catch (cause) {
      throw new LtError('LT_POSTGRES_UNREACHABLE', `cannot look up lt_outbox: ${(cause as Error).message}`, {
        cause,
      });
    }
    throw new LtError('LT_CONFIG_INVALID', 'there is no lt_outbox table on the pool’s search_path', {
      hint: "run the Agent Node migrations (migrate(pool, 'agent')) in the agency's schema, and bind the pool to it",
    });
  }

  // ── the loop ────────────────────────────────────────────────────────────────────────────────────────────

  private async run(firstAttempt: () => void): Promise<void> {
    let backoff = FIRST_BACKOFF_MS;
    let failingSince: number | null = null;
    let failures = 0;
    let standingBy = false;
    while (!this.stopping) {
      try {
        const session = await this.openSession();
        if (this.currentRole !== 'leader') {
          const holdOff = this.lockRetryAt - Date.now();
          if (holdOff > 0) {
            firstAttempt();
            await this.sleep(holdOff, false);
            continue;
          }
          const { rows } = await session.query<{ locked: boolean }>(
            'SELECT pg_try_advisory_lock($1::bigint) AS locked',
            [this.lockKey],
          );
          firstAttempt();
          if (!rows[0]?.locked) {
            if (!standingBy) this.log.info('another relay holds the outbox lock: standing by');
            standingBy = true;
            this.currentRole = 'standby';
            await this.sleep(this.settings.pollIntervalMs, false);
            continue;
          }
          this.currentRole = 'leader';
          standingBy = false;
          this.log.info('took the outbox lock: this relay publishes the outbox');
        }
        await this.ensureListener();
        const count = await this.cycle(session);
        if (failingSince !== null) {
          this.log.info({ failures, ms: Date.now() - failingSince }, 'outbox relay resumed');
          failingSince = null;
          failures = 0;
          backoff = FIRST_BACKOFF_MS;
        }
        if (count < this.settings.batchSize) await this.sleep(this.settings.pollIntervalMs, true);
      } catch (error) {
        firstAttempt();
        if (this.stopping) break;
        await this.checkSession();
        failures += 1;
        const summary = {
          code: error instanceof LtError ? error.code : undefined,
          error: error instanceof Error ? error.message : String(error),
          role: this.currentRole,
          retryInMs: backoff,
        };
        if (failingSince === null) {
          failingSince = Date.now();
          this.log.warn(summary, 'outbox relay cycle failed: nothing was marked; retrying with backoff');
        } else this.log.debug(summary, 'outbox relay cycle failed again');
        await this.sleep(backoff, false);
        backoff = Math.min(backoff * 2, this.settings.maxBackoffMs);
      }
    }
  }

  /** Waits `ms`, or less when stopped or (if `wakeable`) when a notification arrives. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (wakeable && this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waker = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waker = { done, wakeable };
    });
  }

  private wake(byNotification: boolean): void {
    if (this.waker && (this.waker.wakeable || !byNotification)) this.waker.done();
    else if (byNotification) this.wakePending = true;
  }

  // ── connections ─────────────────────────────────────────────────────────────────────────────────────────

  private newClient(role: string): pg.Client {
    const client = new pg.Client({
      ...this.options.pool.options,
      application_name: `lienthong-outbox-relay-${role}`,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    return client;
  }

  /** The dedicated session that holds the lock and runs the cycles; opened again when it died. */
  private async openSession(): Promise<pg.Client> {
    if (this.session && this.sessionAlive) return this.session;
    await this.closeSession();
    const client = this.newClient('session');
    const lost = (): void => this.sessionLost(client);
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
    } catch (cause) {
      await client.end().catch(() => undefined);
      throw new LtError(
        'LT_POSTGRES_UNREACHABLE',
        `cannot open the relay session: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    this.session = client;
    this.sessionAlive = true;
    return client;
  }

  /** The session ended or failed: the lock went with it. */
  private sessionLost(client: pg.Client): void {
    if (this.session !== client || !this.sessionAlive) return;
    this.sessionAlive = false;
    if (this.currentRole === 'leader') {
      this.currentRole = 'standby';
      this.lockRetryAt = Date.now() + this.settings.pollIntervalMs;
      this.log.warn(
        'the outbox relay lost its database session, and with it the lock; trying to take it again',
      );
    }
  }

  /** After a failed cycle: is the session still usable? If not, leadership is gone with it. */
  private async checkSession(): Promise<void> {
    const session = this.session;
    if (!session || !this.sessionAlive) return;
    try {
      await session.query('SELECT 1');
    } catch {
      this.sessionLost(session);
    }
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = null;
    const wasAlive = this.sessionAlive;
    this.sessionAlive = false;
    if (!session) return;
    // ending the session releases the lock; unlocking first makes the hand-over explicit
    if (wasAlive) await session.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
    await session.end().catch(() => undefined);
  }

  /** LISTEN on its own connection (notifications arrive only outside a transaction); best effort. */
  private async ensureListener(): Promise<void> {
    if (this.listener || Date.now() < this.listenerRetryAt) return;
    const client = this.newClient('listen');
    client.on('error', () => {
      if (this.listener === client) this.listener = null;
      void client.end().catch(() => undefined);
    });
    client.on('end', () => {
      if (this.listener === client) this.listener = null;
    });
    client.on('notification', (message) => {
      if (message.channel === NOTIFY_CHANNEL && message.payload === this.schema) this.wake(true);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      this.listener = client;
      // rows committed before LISTEN took effect are caught by the cycle that follows
    } catch (error) {
      this.listenerRetryAt = Date.now() + this.settings.pollIntervalMs;
      this.log.debug({ error: (error as Error).message }, 'LISTEN failed; polling meanwhile');
      await client.end().catch(() => undefined);
    }
  }

  private async closeListener(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => undefined);
  }

  // ── one cycle ───────────────────────────────────────────────────────────────────────────────────────────

  /** Publishes, dead-letters and marks up to batchSize pending rows in one transaction; returns how many. */
  private async cycle(session: pg.Client): Promise<number> {
    const seq = ++this.cycleSeq;
    await session.query('BEGIN');
    try {
      const { rows } = await session.query<OutboxRow>(
        `SELECT id, dataset, op, key, version, payload, trace_id, created_at
           FROM lt_outbox
          WHERE published_at IS NULL AND rejected_at IS NULL
          ORDER BY id
          LIMIT $1
            FOR UPDATE`,
        [this.settings.batchSize],
      );
      if (rows.length === 0) {
        await session.query('COMMIT');
        this.settleDrainWaiters(seq);
        return 0;
      }
      const verdicts = await this.publishRows(rows);
      await this.settleStale(session, rows, verdicts);

      const published: string[] = [];
      const already: string[] = [];
      const rejected: { row: OutboxRow; code: ErrorCode; message: string }[] = [];
      for (const row of rows) {
        const verdict = verdicts.get(row.id)!;
        if (verdict.status === 'published') published.push(row.id);
        else if (verdict.status === 'already-published') already.push(row.id);
        else rejected.push({ row, code: verdict.code, message: verdict.message });
      }
      if (rejected.length > 0) await this.deadLetter(session, rejected);
      if (published.length + already.length > 0) {
        await session.query('UPDATE lt_outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [
          [...published, ...already],
        ]);
      }
      if (rejected.length > 0) {
        await session.query(
          `UPDATE lt_outbox o SET rejected_at = now(), reject_code = r.code, reject_reason = r.reason
             FROM unnest($1::bigint[], $2::text[], $3::text[]) AS r(id, code, reason)
            WHERE o.id = r.id`,
          [
            rejected.map((item) => item.row.id),
            rejected.map((item) => item.code),
            rejected.map((item) => item.message),
          ],
        );
      }
      await session.query('COMMIT');
      this.counters.published += published.length;
      this.counters.alreadyPublished += already.length;
      this.counters.rejected += rejected.length;
      this.counters.batches += 1;
      this.log.debug(
        {
          rows: rows.length,
          published: published.length,
          alreadyPublished: already.length,
          rejected: rejected.length,
        },
        'outbox cycle committed',
      );
      if (already.length > 0) {
        this.log.info(
          { rows: already.length, first: already[0], last: already.at(-1) },
          'marked rows an interrupted attempt had already published',
        );
      }
      return rows.length;
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      this.counters.failedCycles += 1;
      throw error;
    }
  }

  private settleDrainWaiters(seq: number): void {
    const ready = this.drainWaiters.filter((waiter) => waiter.since < seq);
    this.drainWaiters = this.drainWaiters.filter((waiter) => waiter.since >= seq);
    for (const waiter of ready) waiter.resolve();
  }

  /**
   * Publishes the rows in id order, one `publishBatch` per run of consecutive rows of one dataset, and returns
   * the verdict per row id. Throws (rolling the cycle back) when a publish fails as a whole for a reason
   * that may pass: broker, registry or database unavailable.
   */
  private async publishRows(rows: OutboxRow[]): Promise<Map<string, Verdict>> {
    const verdicts = new Map<string, Verdict>();
    for (const run of runsOfOneDataset(rows)) {
      const dataset = run[0]!.dataset;
      let keyField: string;
      try {
        keyField = this.options.publisher.datasetFor(dataset).key.field;
      } catch (error) {
        if (!(error instanceof LtError) || error.retriable) throw error;
        for (const row of run)
          verdicts.set(row.id, { status: 'rejected', code: error.code, message: error.message });
        continue;
      }
      const sent: OutboxRow[] = [];
      const changes: unknown[] = [];
      for (const row of run) {
        const mismatch = keyMismatch(row, keyField);
        if (mismatch) {
          verdicts.set(row.id, { status: 'rejected', code: 'LT_RECORD_INVALID', message: mismatch });
          continue;
        }
        sent.push(row);
        changes.push(this.toChange(row));
      }
      if (changes.length === 0) continue;
      let outcomes: RecordOutcome[];
      try {
        outcomes = (await this.options.publisher.publishBatch(dataset, changes, { partial: true })).outcomes;
      } catch (error) {
        if (!(error instanceof LtError) || error.retriable) throw error;
        for (const row of sent)
          verdicts.set(row.id, { status: 'rejected', code: error.code, message: error.message });
        continue;
      }
      sent.forEach((row, index) => {
        const outcome = outcomes[index];
        if (!outcome) {
          throw new Error(`the publisher returned no outcome for row ${row.id} (position ${index})`);
        }
        verdicts.set(
          row.id,
          outcome.status === 'accepted'
            ? // the publisher knows the row's deterministic eventId: a crash after the ack is recognised exactly
              { status: outcome.alreadyPublished ? 'already-published' : 'published' }
            : {
                status: 'rejected',
                code: outcome.code,
                message: outcome.message,
                ...(outcome.lastPublished === undefined ? {} : { lastPublished: outcome.lastPublished }),
              },
        );
      });
    }
    return verdicts;
  }

  /** A row as the publisher takes it; `eventId` is derived from the row, so every attempt reuses it. */
  private toChange(row: OutboxRow): unknown {
    const common = {
      version: Number(row.version),
      occurredAt: row.created_at,
      eventId: outboxEventId(this.options.agency, this.schema, row.id, row.created_at),
      ...(row.trace_id ? { traceId: row.trace_id } : {}),
    };
    return row.op === 'DELETE'
      ? { op: 'DELETE', key: row.key, ...common }
      : { op: row.op, after: row.payload, ...common };
  }

  /**
   * Turns stale refusals that are really rows published by an interrupted attempt into `already-published`.
   * The publisher recognises such rows by their eventId (`lt_published_event`) and answers them accepted and
   * `alreadyPublished`; this inference remains for rows published before that table existed.
   *
   * The version ledger advances only after the broker's acknowledgement, and rows are marked only when
   * their cycle commits; a crash in between leaves rows unmarked whose versions the ledger already holds.
   * Those rows come back refused as stale with `lastPublished` = L. For one key, walking this cycle's rows
   * in id order from the highest version already marked published (M), a refused row of version v was
   * published by the interrupted attempt exactly when the attempt would have accepted it:
   *   v > every version accepted before it in the walk (M included), v ≤ L,
   *   and L itself is explained by the interrupted attempt: an unmarked row of the key, at this id or later,
   *   has version L (otherwise L came from another path and this row is stale for real).
   * Anything else stays refused and goes to the DLQ.
   */
  private async settleStale(
    session: pg.Client,
    rows: OutboxRow[],
    verdicts: Map<string, Verdict>,
  ): Promise<void> {
    const staleKeys = new Map<string, Set<string>>();
    for (const row of rows) {
      const verdict = verdicts.get(row.id);
      if (verdict?.status === 'rejected' && verdict.lastPublished !== undefined) {
        const keys = staleKeys.get(row.dataset) ?? new Set<string>();
        keys.add(row.key);
        staleKeys.set(row.dataset, keys);
      }
    }
    for (const [dataset, keys] of staleKeys) {
      const { rows: history } = await session.query<{
        id: string;
        key: string;
        version: string;
        published: boolean;
      }>(
        `SELECT id, key, version, published_at IS NOT NULL AS published
           FROM lt_outbox
          WHERE dataset = $1 AND key = ANY($2::text[]) AND rejected_at IS NULL`,
        [dataset, [...keys]],
      );
      const historyByKey = groupBy(history, (item) => item.key);
      const cycleByKey = groupBy(
        rows.filter((row) => row.dataset === dataset && keys.has(row.key)),
        (row) => row.key,
      );
      for (const [key, ofCycle] of cycleByKey) {
        const ofKey = historyByKey.get(key) ?? [];
        let running = -Infinity;
        for (const item of ofKey) if (item.published) running = Math.max(running, Number(item.version));
        const unmarked = ofKey.filter((item) => !item.published);
        for (const row of ofCycle) {
          const verdict = verdicts.get(row.id)!;
          const version = Number(row.version);
          if (verdict.status === 'published') {
            running = Math.max(running, version);
          } else if (verdict.status === 'rejected' && verdict.lastPublished !== undefined) {
            const last = verdict.lastPublished;
            const explained = unmarked.some(
              (item) => Number(item.version) === last && BigInt(item.id) >= BigInt(row.id),
            );
            if (version > running && version <= last && explained) {
              verdicts.set(row.id, { status: 'already-published' });
              running = version;
            }
          }
        }
      }
    }
  }

  /**
   * Sends refused rows to the agency's `lt.dlq.ingest.<agency>` before they are marked: value = the original row as JSON, key = the
   * row's key, the reason in `lt-error-*` headers (DESIGN.md §3), where it came from in `lt-source-*`.
   */
  private async deadLetter(
    session: pg.Client,
    rejected: { row: OutboxRow; code: ErrorCode; message: string }[],
  ): Promise<void> {
    const { rows: originals } = await session.query<{ id: string; original: string }>(
      'SELECT id, to_jsonb(o)::text AS original FROM lt_outbox o WHERE id = ANY($1::bigint[])',
      [rejected.map((item) => item.row.id)],
    );
    const byId = new Map(originals.map((item) => [item.id, item.original]));
    const messages: Message[] = rejected.map(({ row, code, message }) => {
      const headers: IHeaders = {
        'lt-source-agency': this.options.agency,
        'lt-event-id': outboxEventId(this.options.agency, this.schema, row.id, row.created_at),
      };
      if (row.trace_id) headers['lt-trace-id'] = row.trace_id;
      const original = byId.get(row.id);
      return deadLetterMessage(
        { key: Buffer.from(row.key), value: original === undefined ? null : Buffer.from(original), headers },
        {
          stage: DLQ_STAGE,
          owner: this.options.agency,
          code,
          detail: message,
          source: { table: `${this.schema}.lt_outbox`, id: row.id },
        },
      );
    });
    try {
      if (!this.dlqConnected) {
        await this.dlq.connect();
        this.dlqConnected = true;
      }
      await sendBounded(this.dlq, {
        topicMessages: [{ topic: topics.deadLetter(DLQ_STAGE, this.options.agency), messages }],
      });
    } catch (cause) {
      throw new LtError(
        'LT_PUBLISH_FAILED',
        `sending ${messages.length} refused outbox rows to ${topics.deadLetter(DLQ_STAGE, this.options.agency)} failed: ${(cause as Error).message}`,
        { cause, details: { topic: topics.deadLetter(DLQ_STAGE, this.options.agency) } },
      );
    }
    this.log.warn(
      { rows: rejected.length, codes: [...new Set(rejected.map((item) => item.code))] },
      'outbox rows refused: sent to the dead-letter topic and marked rejected',
    );
  }
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/** Consecutive rows of one dataset, in id order. */
function runsOfOneDataset(rows: OutboxRow[]): OutboxRow[][] {
  const runs: OutboxRow[][] = [];
  for (const row of rows) {
    const last = runs.at(-1);
    if (last && last[0]!.dataset === row.dataset) last.push(row);
    else runs.push([row]);
  }
  return runs;
}

/** Why a non-DELETE row's `key` column is not its record's key; null when they agree. */
function keyMismatch(row: OutboxRow, keyField: string): string | null {
  if (row.op === 'DELETE' || typeof row.payload !== 'object' || row.payload === null) return null;
  const named = (row.payload as Record<string, unknown>)[keyField];
  if (named === undefined || named === null || String(named) === row.key) return null;
  return `${row.key}: the outbox row's key is not the record's ${keyField} (${String(named)})`;
}
