import { createHash, type KeyObject } from 'node:crypto';
import { appendFile, link, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import avro from 'avsc';
import { v7 as uuidv7 } from 'uuid';
import { LtError } from '../../infra/errors.ts';
import { quoteIdent, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { ChangeEvent, DatasetRecord } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { latestChangesAsOf } from '../../schemas/postgres/as-of.ts';
import { HistoryTable, type HistoryEntry } from '../../schemas/postgres/history.ts';
import type { SigningKey } from './keys.ts';
import { keyIdOf } from './keys.ts';
import { MAGIC, packageTail } from './layout.ts';
import { ManifestSchema, RECORDS_PART, type Manifest } from './manifest.ts';
import { packageRecordType } from './records.ts';
import { sealerFor, signManifest } from './seal.ts';

/**
 * The part of a dataset a sharing agreement delivers, as the composition root (the CLI) reads it from the
 * agreement: its fields and its compiled row filter. A package under an agreement holds exactly the records
 * inside the filter, projected to the fields, and no trace of any other key (not even deleted ones).
 */
export interface AgreementScope {
  id: string;
  revision: number;
  subscriber: string;
  fields: string[];
  filterText: string;
  /** The agreement's filter over a whole record (`compileFilter(agreement.filter, dataset)`). */
  matches: (record: DatasetRecord) => boolean;
}

export interface ExportOptions {
  /** The NGDB database, its search_path set to the NGDB schema (current-state and history tables). */
  ngdb: Pool;
  dataset: Dataset;
  /** Only this agreement's fields and rows; its subscriber is the package's recipient. */
  agreement?: AgreementScope;
  /** The state at this source time instead of the current state. */
  asOf?: Date;
  /** The package file to write; refused when it exists. */
  out: string;
  signingKey: SigningKey;
  /** The agency the package is for; with a public key, the records are encrypted to it. */
  recipient?: { agency: string; publicKey?: KeyObject };
  /** The principal running the export (the manifest's createdBy). */
  createdBy: string;
  /** Rows read per query. @default 10000 */
  pageSize?: number;
  /** The Avro container's block codec. @default 'deflate' */
  codec?: 'deflate' | 'null';
  /** Called after every page with the records written so far. */
  onProgress?: (written: number) => void;
}

export interface ExportResult {
  file: string;
  manifest: Manifest;
  bytes: number;
}

/** Counts and hashes the bytes of a part as they pass. */
class PartMeter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/**
 * Writes a package of `dataset` from the NGDB (docs/packages.md): the records as an Avro object container file
 * (streamed, one page of rows in memory at a time), the manifest, its Ed25519 signature. Everything is read in
 * one REPEATABLE READ transaction, so the package is one consistent state even while the NGDB sink writes. The
 * file is written aside and linked into place at the end: an interrupted export leaves no package behind.
 */
export async function exportPackage(options: ExportOptions): Promise<ExportResult> {
  const { dataset, agreement } = options;
  if (agreement && options.recipient && options.recipient.agency !== agreement.subscriber)
    throw new LtError(
      'LT_PACKAGE_RECIPIENT',
      `a package under agreement ${agreement.id} is for its subscriber ${agreement.subscriber}, not ${options.recipient.agency}`,
      { hint: `drop --for, or pass --for ${agreement.subscriber}` },
    );
  if (await exists(options.out))
    throw new LtError('LT_CONFIG_INVALID', `${options.out} exists`, {
      hint: 'choose another --out (a package is never overwritten)',
    });
  const recipientAgency = options.recipient?.agency ?? agreement?.subscriber ?? null;
  const records = packageRecordType(
    dataset,
    agreement ? agreement.fields : dataset.fields.map((f) => f.name),
  );
  const packageId = uuidv7();
  const sealer = options.recipient?.publicKey ? sealerFor(options.recipient.publicKey, packageId) : null;
  const cipher = sealer?.cipherFor(RECORDS_PART) ?? null;
  const aside = `${options.out}.partial-${packageId}`;

  const client = await options.ngdb.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshotAt = (await client.query<{ now: Date }>('SELECT now()')).rows[0]!.now;
    const state = { written: 0, latestOccurredAt: null as Date | null, rejectedKey: null as string | null };
    const events = packageEvents(client, options, records.dataset, state);

    await writeFile(aside, MAGIC, { flag: 'wx', mode: 0o600 });
    const encoder = new avro.streams.BlockEncoder(records.type, {
      codec: options.codec ?? 'deflate',
      blockSize: 256 * 1024,
    });
    encoder.on('typeError', (_error: unknown, value: ChangeEvent) => {
      state.rejectedKey = value.key;
    });
    const meter = new PartMeter();
    try {
      await pipeline([
        Readable.from(events),
        encoder,
        ...(cipher ? [cipher.cipher] : []),
        meter,
        createWriteStream(aside, { flags: 'a' }),
      ]);
    } catch (error) {
      if (state.rejectedKey !== null)
        throw new LtError(
          'LT_RECORD_INVALID',
          `record ${state.rejectedKey} of the NGDB does not fit the dataset's schema`,
          { cause: error, details: { key: state.rejectedKey } },
        );
      throw error;
    }
    await client.query('COMMIT');

    const manifest: Manifest = ManifestSchema.parse({
      format: 'lienthong-package/1',
      packageId,
      dataset: dataset.id,
      fields: records.dataset.fields.map((field) => field.name),
      schema: records.schema,
      agreement: agreement
        ? {
            id: agreement.id,
            revision: agreement.revision,
            subscriber: agreement.subscriber,
            filter: agreement.filterText,
          }
        : null,
      records: state.written,
      parts: [
        {
          name: RECORDS_PART,
          offset: MAGIC.length,
          bytes: meter.bytes,
          sha256: meter.hash.digest('hex'),
          ...(cipher
            ? { iv: cipher.iv.toString('base64url'), tag: cipher.cipher.getAuthTag().toString('base64url') }
            : {}),
        },
      ],
      covers: {
        kind: options.asOf ? 'as-of' : 'current',
        snapshotAt: snapshotAt.toISOString(),
        asOf: options.asOf?.toISOString() ?? null,
        latestOccurredAt: state.latestOccurredAt?.toISOString() ?? null,
      },
      recipient: recipientAgency
        ? {
            agency: recipientAgency,
            encryption:
              sealer && options.recipient?.publicKey
                ? {
                    scheme: 'X25519-HKDF-SHA256-AES-256-GCM',
                    keyId: keyIdOf(options.recipient.publicKey),
                    ephemeralPublicKey: sealer.ephemeralPublicKey,
                  }
                : null,
          }
        : null,
      createdAt: new Date().toISOString(),
      createdBy: options.createdBy,
      signer: { algorithm: 'Ed25519', keyId: options.signingKey.keyId },
    } satisfies Manifest);
    const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
    await appendFile(
      aside,
      packageTail(manifestBytes, signManifest(manifestBytes, options.signingKey.privateKey)),
    );
    await link(aside, options.out).catch((error: unknown) => {
      throw (error as NodeJS.ErrnoException).code === 'EEXIST'
        ? new LtError('LT_CONFIG_INVALID', `${options.out} appeared during the export`, {
            hint: 'choose another --out (a package is never overwritten)',
          })
        : error;
    });
    return { file: options.out, manifest, bytes: (await stat(options.out)).size };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
    await rm(aside, { force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The package's events, page by page, in key order (inside the caller's snapshot). */
async function* packageEvents(
  client: PoolClient,
  options: ExportOptions,
  projected: Dataset,
  state: { written: number; latestOccurredAt: Date | null },
): AsyncGenerator<ChangeEvent> {
  const { dataset, agreement } = options;
  const pageSize = options.pageSize ?? 10_000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new RangeError(`pageSize must be a whole number ≥ 1 (got ${pageSize})`);
  const history = new HistoryTable(dataset);
  const fields = projected.fields.map((field) => field.name);
  if (!options.asOf) await openCurrentCursor(client, history);
  const nextPage = (afterKey: string | undefined): Promise<HistoryEntry[]> =>
    options.asOf
      ? latestChangesAsOf(client, dataset, options.asOf, {
          limit: pageSize,
          ...(afterKey === undefined ? {} : { afterKey }),
        })
      : fetchCurrent(client, history, pageSize);
  let read = 0;
  let page = await nextPage(undefined);
  for (;;) {
    // PostgreSQL reads the next page while this one is encoded (the client runs its queries in order)
    const full = page.length === pageSize;
    const next = full ? nextPage(page[page.length - 1]!.key) : null;
    next?.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    for (const entry of page) {
      const event = toPackageEvent(entry, dataset, fields, agreement);
      if (!event) continue;
      if (state.latestOccurredAt === null || event.occurredAt > state.latestOccurredAt)
        state.latestOccurredAt = event.occurredAt;
      state.written++;
      yield event;
    }
    read += page.length;
    options.onProgress?.(state.written);
    if (!next) break;
    page = await next;
  }
  if (!options.asOf) await checkEveryCurrentRowRead(client, history, read);
}

const CURRENT_CURSOR = 'lt_package_export';

/**
 * A cursor over the current-state table in key order, each row with its history row (the event that made it:
 * the source agency and trace id live only there), joined by `_event_id`, which the NGDB sink writes in one
 * transaction. One plan, read as it streams (no page re-seeks its place); closed by the transaction's end.
 */
async function openCurrentCursor(client: PoolClient, history: HistoryTable): Promise<void> {
  await client.query(
    `DECLARE ${CURRENT_CURSOR} NO SCROLL CURSOR FOR
     SELECT ${history.selectList('h')}
       FROM ${quoteIdent(history.current.name)} c
       JOIN ${quoteIdent(history.name)} h ON h."_event_id" = c."_event_id"
      ORDER BY c.${quoteIdent(history.keyColumn)}`,
  );
}

async function fetchCurrent(
  client: PoolClient,
  history: HistoryTable,
  limit: number,
): Promise<HistoryEntry[]> {
  const { rows } = await client.query<Record<string, unknown>>(
    `FETCH FORWARD ${limit} FROM ${CURRENT_CURSOR}`,
  );
  return rows.map((row) => history.read(row));
}

/** Nothing is silently left out: a current row without its history row stops the export. */
async function checkEveryCurrentRowRead(
  client: PoolClient,
  history: HistoryTable,
  read: number,
): Promise<void> {
  const { rows } = await client.query<{ count: string }>(
    `SELECT count(*)::text AS count FROM ${quoteIdent(history.current.name)}`,
  );
  const count = Number(rows[0]!.count);
  if (count !== read)
    throw new LtError(
      'LT_INTERNAL',
      `${count - read} row(s) of ${history.current.name} have no history row with their event id`,
      {
        details: { table: history.current.name, rows: count, read },
        hint: 'the NGDB is inconsistent: rebuild it from the source topics, then export again',
      },
    );
}

/** One history entry as the package's change event; null when it is outside the agreement. */
function toPackageEvent(
  entry: HistoryEntry,
  dataset: Dataset,
  fields: readonly string[],
  agreement: AgreementScope | undefined,
): ChangeEvent | null {
  let op: ChangeEvent['op'];
  let after: DatasetRecord | null;
  if (entry.op === 'DELETE' || entry.record === null) {
    // a subscriber never learns a key that is not inside its agreement, so no deletion either
    if (agreement) return null;
    op = 'DELETE';
    after = null;
  } else if (!agreement) {
    op = entry.op;
    after = entry.record;
  } else {
    if (!agreement.matches(entry.record)) return null;
    op = 'SNAPSHOT';
    after = {};
    for (const field of fields) after[field] = entry.record[field] ?? null;
  }
  // one object per event, its properties always in this order (one hidden class for the encoder)
  return {
    eventId: entry.eventId,
    dataset: dataset.id,
    op,
    key: entry.key,
    version: entry.version,
    occurredAt: entry.occurredAt,
    sourceAgency: entry.sourceAgency,
    traceId: entry.traceId,
    after,
  } as ChangeEvent;
}
