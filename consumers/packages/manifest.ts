import { z } from 'zod';

/** The one part every package has today: the records, an Avro object container file. */
export const RECORDS_PART = 'records.avro';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256, 64 lower-case hex digits');
const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url');
const Iso = z.iso.datetime({ offset: true });

const PartSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,60}$/),
  /** Byte offset of the part in the package file (the first part starts right after the magic). */
  offset: z.number().int().nonnegative(),
  /** Length in bytes as stored (encrypted, when the package is). */
  bytes: z.number().int().nonnegative(),
  /** SHA-256 of the part's bytes as stored. */
  sha256: Sha256,
  /** Only in an encrypted package: the part's AES-256-GCM IV (12 bytes) and tag (16 bytes), base64url. */
  iv: Base64Url.optional(),
  tag: Base64Url.optional(),
});

/**
 * The manifest of a package: what it holds, what it covers, for whom, by whom. Stored as UTF-8 JSON inside the
 * package and signed by the platform (seal.ts); an import trusts nothing of a package before the signature
 * over these bytes verifies. `schema` is the Avro schema of every record (the change-event envelope of the
 * dataset, projected to `fields`): the container file's header must hold exactly it.
 */
export const ManifestSchema = z.strictObject({
  format: z.literal('lienthong-package/1'),
  /** UUIDv7; also the import checkpoint's key and the encryption's salt. */
  packageId: z.uuid(),
  dataset: z.string().min(1).max(120),
  /** The dataset fields the records carry, the key first (all of them, or an agreement's). */
  fields: z.array(z.string().min(1)).min(1),
  schema: z.record(z.string(), z.unknown()),
  /** The sharing agreement the package was made under (its fields and row filter), or null. */
  agreement: z
    .strictObject({
      id: z.string(),
      revision: z.number().int().nonnegative(),
      subscriber: z.string(),
      filter: z.string(),
    })
    .nullable(),
  /** Number of records in the records part: one per key (a deleted key's last change is a DELETE). */
  records: z.number().int().nonnegative(),
  parts: z.array(PartSchema).min(1).max(16),
  /**
   * What the package covers. `current`: the NGDB's current state at `snapshotAt` (one read-only snapshot:
   * every change the NGDB had committed by then). `as-of`: the state at source time `asOf` (each key's latest
   * change with occurredAt ≤ asOf), read at `snapshotAt`.
   */
  covers: z.strictObject({
    kind: z.enum(['current', 'as-of']),
    snapshotAt: Iso,
    asOf: Iso.nullable(),
    /** The latest occurredAt among the records (null when there are none). */
    latestOccurredAt: Iso.nullable(),
  }),
  /** The agency the package is for; only its import accepts it. null: any importer with the platform key. */
  recipient: z
    .strictObject({
      agency: z.string(),
      /** How the parts are encrypted to the agency's key; null when they are not. */
      encryption: z
        .strictObject({
          scheme: z.literal('X25519-HKDF-SHA256-AES-256-GCM'),
          /** Id (SHA-256 of the SPKI DER, hex) of the recipient's public key. */
          keyId: Sha256,
          ephemeralPublicKey: Base64Url,
        })
        .nullable(),
    })
    .nullable(),
  createdAt: Iso,
  /** The principal that ran the export. */
  createdBy: z.string().min(1),
  signer: z.strictObject({ algorithm: z.literal('Ed25519'), keyId: Sha256 }),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestPart = Manifest['parts'][number];
