import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import avro from 'avsc';
import { LtError } from '../../infra/errors.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, type Dictionary } from '../../schemas/model/dictionary.ts';
import { keyIdOf } from './keys.ts';
import { MAGIC, readFrame } from './layout.ts';
import { ManifestSchema, type Manifest, type ManifestPart } from './manifest.ts';
import { packageRecordType } from './records.ts';
import { decipherFor, manifestSignatureValid } from './seal.ts';

/** Where an import writes: the NGDB (current state + history), or one agency's copy. */
export type ImportTarget = { kind: 'ngdb' } | { kind: 'agency'; agency: string };

export function describeTarget(target: ImportTarget): string {
  return target.kind === 'ngdb' ? 'ngdb' : `agency:${target.agency}`;
}

export interface VerifyOptions {
  file: string;
  dictionary: Dictionary;
  /** The platform's public key (signing.pub of the exporting platform). */
  verifyKey: KeyObject;
  target: ImportTarget;
  /**
   * The recipient agency's private key, for an encrypted package: called only when the package is encrypted
   * (so an import of a plain package needs no key file).
   */
  recipientKey?: () => KeyObject;
}

/** A package whose every check passed: what an import may load. */
export interface VerifiedPackage {
  file: string;
  manifest: Manifest;
  /** The dataset as the records carry it (projected to the manifest's fields), from today's dictionary. */
  dataset: Dataset;
  /** The whole dataset (the NGDB's tables hold every field). */
  fullDataset: Dataset;
  type: avro.Type;
  recipientKey: KeyObject | undefined;
}

function refused(
  code: 'LT_PACKAGE_INVALID' | 'LT_PACKAGE_SIGNATURE' | 'LT_PACKAGE_RECIPIENT' | 'LT_PACKAGE_KEY_MISSING',
  file: string,
  reason: string,
  hint: string,
  details: Record<string, unknown> = {},
): LtError {
  return new LtError(code, `${file} refused: ${reason}`, { details: { file, ...details }, hint });
}

const COPY_AGAIN =
  'copy the package from its medium again; if it stays so, ask the exporting platform for a new one';

/**
 * Checks everything of a package before anything of it is loaded, in this order, each failure an LtError
 * naming the reason: the frame (magic, trailer, bounded manifest); the Ed25519 signature of the manifest by the
 * platform's key; the manifest's form; the recipient (a package for another agency, or for an agency when the
 * target is the NGDB, is refused); the parts (contiguous, every byte hashed against the manifest); the schema
 * (the dataset's envelope from today's dictionary, projected to the package's fields, equals the manifest's and
 * the container header's); then every record is read once (decrypted and GCM-verified when encrypted): its
 * dataset, key, op and version (its other fields walked over, not decoded), and their count against the manifest.
 */
export async function verifyPackage(options: VerifyOptions): Promise<VerifiedPackage> {
  const { file, target } = options;
  const frame = await readFrame(file);

  if (!manifestSignatureValid(frame.manifest, frame.signature, options.verifyKey)) {
    const claimed = claimedSigner(frame.manifest);
    const ours = keyIdOf(options.verifyKey);
    throw refused(
      'LT_PACKAGE_SIGNATURE',
      file,
      claimed && claimed !== ours
        ? `signed by another key (${claimed.slice(0, 16)}…), not this platform's (${ours.slice(0, 16)}…)`
        : 'the manifest’s signature does not verify: the manifest or its signature was changed',
      claimed && claimed !== ours
        ? 'import only packages made by this platform; if its key was rotated, pass the key it was signed with (--platform-key)'
        : COPY_AGAIN,
      { signer: claimed, platformKey: ours },
    );
  }
  const parsed = ManifestSchema.safeParse(parseJson(frame.manifest));
  if (!parsed.success)
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its manifest is not a lienthong-package/1 manifest (${parsed.error.issues
        .slice(0, 3)
        .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
        .join('; ')})`,
      'this import reads format lienthong-package/1; use the lienthong version that made the package',
    );
  const manifest = parsed.data;

  checkRecipient(file, manifest, target);
  const recipientKey = checkDecryptionKey(file, manifest, options.recipientKey);
  await checkParts(file, manifest, frame.partsEnd);

  let fullDataset: Dataset;
  try {
    fullDataset = getDataset(options.dictionary, manifest.dataset);
  } catch {
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `dataset ${manifest.dataset} is not in this dictionary`,
      'update the dictionary (schemas/dictionary) to the exporting platform’s',
      { dataset: manifest.dataset },
    );
  }
  const allFields = fullDataset.fields.map((field) => field.name);
  if (target.kind === 'ngdb' && !sameFields(manifest.fields, allFields))
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `the NGDB holds every field of ${manifest.dataset}; this package carries only ${manifest.fields.join(', ')}`,
      'import a package exported without --agreement into the NGDB',
    );
  let records;
  try {
    records = packageRecordType(fullDataset, manifest.fields);
  } catch (cause) {
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its fields do not exist in ${manifest.dataset} (${(cause as Error).message})`,
      'update the dictionary to the exporting platform’s',
    );
  }
  if (
    !sameFields(
      records.dataset.fields.map((field) => field.name),
      manifest.fields,
    ) ||
    JSON.stringify(records.schema) !== JSON.stringify(manifest.schema)
  )
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its schema differs from ${manifest.dataset} in this dictionary`,
      'import with the dictionary the exporting platform had when it made the package (or ask for a new package)',
    );

  const verified: VerifiedPackage = {
    file,
    manifest,
    dataset: records.dataset,
    fullDataset,
    type: records.type,
    recipientKey,
  };
  let count = 0;
  try {
    for await (const event of readRecords<CheckedFields>(verified, checkedFieldsSchema(manifest.schema))) {
      checkRecord(file, manifest, event, count);
      count++;
    }
  } catch (error) {
    if (error instanceof LtError) throw error;
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its records cannot be read (${errorText(error)})`,
      manifest.recipient?.encryption ? `${COPY_AGAIN}; check that --key is the recipient’s key` : COPY_AGAIN,
    );
  }
  if (count !== manifest.records)
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `it holds ${count} records; its manifest says ${manifest.records}`,
      COPY_AGAIN,
    );
  return verified;
}

/** The records of a verified package, in order, decrypted and decoded as they stream (bounded memory). */
export function readPackageRecords(verified: VerifiedPackage): AsyncGenerator<ChangeEvent> {
  return readRecords<ChangeEvent>(verified, undefined);
}

/** What verification reads of each record: the envelope fields it checks, and whether `after` is null. */
type CheckedFields = Pick<ChangeEvent, 'dataset' | 'key' | 'op' | 'version'> & { after: object | null };

/**
 * The package's schema reduced to {@link CheckedFields}, `after` a record of no fields: read with it (Avro schema
 * resolution), a record's other fields are skipped over, not decoded (a quarter of a full decode's time).
 */
function checkedFieldsSchema(schema: Record<string, unknown>): avro.Schema {
  const checked = new Set(['dataset', 'key', 'op', 'version', 'after']);
  const fields = (schema.fields as { name: string; type: unknown }[])
    .filter((field) => checked.has(field.name))
    .map((field) =>
      field.name !== 'after'
        ? field
        : {
            ...field,
            type: (field.type as unknown[]).map((branch) =>
              typeof branch === 'object' && branch !== null
                ? { type: 'record', name: (branch as { name: string }).name, fields: [] }
                : branch,
            ),
          },
    );
  return { ...schema, fields } as unknown as avro.Schema;
}

/** The records, decoded with the package's type, or resolved to `readerSchema` when given. */
async function* readRecords<T>(
  verified: VerifiedPackage,
  readerSchema: avro.Schema | undefined,
): AsyncGenerator<T> {
  const { manifest, file } = verified;
  const part = manifest.parts[0]!;
  let source: Readable = createReadStream(file, { start: part.offset, end: part.offset + part.bytes - 1 });
  const encryption = manifest.recipient?.encryption;
  if (encryption) {
    const decipher = decipherFor(verified.recipientKey!, manifest.packageId, encryption.ephemeralPublicKey, {
      name: part.name,
      iv: Buffer.from(part.iv ?? '', 'base64url'),
      tag: Buffer.from(part.tag ?? '', 'base64url'),
    });
    source.on('error', (error) => decipher.destroy(error));
    source = source.pipe(decipher);
  }
  const expected = JSON.stringify(manifest.schema);
  const decoder = new avro.streams.BlockDecoder({
    ...(readerSchema ? { readerSchema } : {}),
    parseHook: (schema) => {
      if (JSON.stringify(schema) !== expected)
        throw new Error('the container header’s schema is not the manifest’s');
      return verified.type;
    },
  });
  source.on('error', (error) => decoder.destroy(error));
  source.pipe(decoder);
  for await (const event of decoder as AsyncIterable<T>) yield event;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The signer key id a manifest claims, read without trusting it (only to explain a failed signature). */
function claimedSigner(bytes: Buffer): string | undefined {
  const value = parseJson(bytes) as { signer?: { keyId?: unknown } } | undefined;
  const keyId = value?.signer?.keyId;
  return typeof keyId === 'string' && /^[0-9a-f]{64}$/.test(keyId) ? keyId : undefined;
}

function checkRecipient(file: string, manifest: Manifest, target: ImportTarget): void {
  const recipient = manifest.recipient?.agency ?? null;
  if (recipient === null) return;
  if (target.kind === 'agency' && target.agency === recipient) return;
  throw refused(
    'LT_PACKAGE_RECIPIENT',
    file,
    `it is meant for agency ${recipient}, not ${describeTarget(target)}`,
    `only ${recipient} may import it (--into agency:${recipient}); ask the platform for a package for your agency`,
    { recipient, target: describeTarget(target) },
  );
}

function checkDecryptionKey(
  file: string,
  manifest: Manifest,
  loadKey: (() => KeyObject) | undefined,
): KeyObject | undefined {
  const encryption = manifest.recipient?.encryption;
  if (!encryption) return undefined;
  const key = loadKey?.();
  if (!key)
    throw refused(
      'LT_PACKAGE_KEY_MISSING',
      file,
      `it is encrypted for ${manifest.recipient!.agency}; no private key was given`,
      `pass --key with ${manifest.recipient!.agency}’s private key (made by lienthong package keys issue)`,
    );
  const keyId = keyIdOf(createPublicKey(key));
  if (keyId !== encryption.keyId)
    throw refused(
      'LT_PACKAGE_RECIPIENT',
      file,
      `it is encrypted to another key of ${manifest.recipient!.agency} (${encryption.keyId.slice(0, 16)}…), not this one (${keyId.slice(0, 16)}…)`,
      'pass the private key whose public key the package was made for',
    );
  return key;
}

/** The parts lie end to end from the magic to the manifest, and every byte hashes to the manifest's SHA-256. */
async function checkParts(file: string, manifest: Manifest, partsEnd: number): Promise<void> {
  let offset = MAGIC.length;
  for (const part of manifest.parts) {
    if (part.offset !== offset)
      throw refused(
        'LT_PACKAGE_INVALID',
        file,
        `part ${part.name} is not where its manifest says`,
        COPY_AGAIN,
      );
    offset += part.bytes;
  }
  if (offset !== partsEnd)
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its parts take ${offset - MAGIC.length} bytes; the file has ${partsEnd - MAGIC.length} before the manifest`,
      COPY_AGAIN,
    );
  if (manifest.parts.length !== 1 || manifest.parts[0]!.name !== 'records.avro')
    throw refused(
      'LT_PACKAGE_INVALID',
      file,
      `its parts are ${manifest.parts.map((part) => part.name).join(', ')}; this import reads one records.avro`,
      'use the lienthong version that made the package',
    );
  for (const part of manifest.parts) {
    const actual = await sha256Of(file, part);
    if (actual !== part.sha256)
      throw refused(
        'LT_PACKAGE_INVALID',
        file,
        `part ${part.name} does not match its SHA-256 in the manifest (the bytes changed)`,
        COPY_AGAIN,
        { part: part.name, expected: part.sha256, actual },
      );
  }
}

async function sha256Of(file: string, part: ManifestPart): Promise<string> {
  const hash = createHash('sha256');
  if (part.bytes === 0) return hash.digest('hex');
  for await (const chunk of createReadStream(file, { start: part.offset, end: part.offset + part.bytes - 1 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function checkRecord(file: string, manifest: Manifest, event: CheckedFields, index: number): void {
  const problem =
    event.dataset !== manifest.dataset
      ? `is of dataset ${event.dataset}`
      : event.key === ''
        ? 'has an empty key'
        : (event.op === 'DELETE') !== (event.after === null)
          ? `is a ${event.op} ${event.after === null ? 'without' : 'with'} a record`
          : !Number.isSafeInteger(event.version) || event.version < 0
            ? 'has an impossible version'
            : null;
  if (problem)
    throw refused('LT_PACKAGE_INVALID', file, `record ${index + 1} ${problem}`, COPY_AGAIN, {
      record: index + 1,
    });
}

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 200) : String(error).slice(0, 200);
}
