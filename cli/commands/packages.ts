import { Presets, SingleBar } from 'cli-progress';
import {
  agencyKeyFiles,
  describeTarget,
  ensurePlatformSigningKey,
  exportPackage,
  importPackage,
  issueAgencyKey,
  platformVerifyKeyFile,
  readRecipientPrivateKey,
  readRecipientPublicKey,
  readVerifyKey,
  verifyPackage,
  type AgreementScope,
  type ImportTarget,
  type Manifest,
} from '../../consumers/packages/index.ts';
import { readEnv } from '../../infra/config/options.ts';
import { isLtError, LtError, toLtError } from '../../infra/errors.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import { principals } from '../../infra/security/principals.ts';
import {
  AgreementStore,
  allowsMethod,
  compileFilter,
  isActive,
  unsharedFilterFields,
} from '../../platform/agreements/index.ts';
import { recordOperatorAction, type OperatorAction } from '../../platform/audit/operator-audit.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';

export interface ExportCommandOptions {
  dataset: string;
  agreement?: string;
  asOf?: Date;
  out: string;
  for?: string;
  recipientKey?: string;
  schema: string;
  platformSchema: string;
  codec: 'deflate' | 'null';
}

export interface ImportCommandOptions {
  into: string;
  schema?: string;
  platformSchema: string;
  platformKey?: string;
  key?: string;
  batch: number;
}

/** Progress on a terminal: a bar with rate and ETA; elsewhere (a log file, CI) a line every 5 seconds. */
function progressReporter(what: string): { update(done: number, total: number | null): void; stop(): void } {
  const started = Date.now();
  const rate = (done: number) => Math.round(done / Math.max((Date.now() - started) / 1000, 0.001));
  if (process.stdout.isTTY) {
    const bar = new SingleBar(
      {
        format: `  ${what} |{bar}| {value}/{total} records | {rate} records/s | ETA {eta}s`,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    let running = false;
    return {
      update(done, total) {
        if (!running) bar.start(total ?? done, done, { rate: 0 });
        running = true;
        bar.setTotal(total ?? done);
        bar.update(done, { rate: rate(done) });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, total) {
      if (Date.now() - last < 5_000) return;
      last = Date.now();
      console.log(`${what}: ${done}${total === null ? '' : `/${total}`} records, ${rate(done)} records/s`);
    },
    stop: () => undefined,
  };
}

/** An audit entry; a failure to write it never hides the outcome it records (it is said on stderr). */
async function audit(pool: Pool, action: OperatorAction): Promise<void> {
  await recordOperatorAction(pool, action).catch((error: unknown) => {
    console.error(
      `lienthong: could not record ${action.action} in operator_audit: ${toLtError(error).message}`,
    );
  });
}

function outcomeOf(error: unknown): 'refused' | 'failed' {
  return isLtError(error) && error.code !== 'LT_INTERNAL' && !error.retriable ? 'refused' : 'failed';
}

/**
 * An agreement's scope for a package: it must be of this dataset, allow method `media` (decree method (d):
 * data packaged on storage media; LT_METHOD_NOT_ALLOWED otherwise), be active, and filter only on shared fields.
 */
async function agreementScope(
  platform: Pool,
  dictionary: Dictionary,
  id: string,
  dataset: Dataset,
): Promise<AgreementScope> {
  const agreement = await new AgreementStore(platform, dictionary).get(id);
  if (agreement.dataset !== dataset.id)
    throw new LtError(
      'LT_AGREEMENT_INVALID',
      `agreement ${id} shares ${agreement.dataset}, not ${dataset.id}`,
      {
        hint: `pass --dataset ${agreement.dataset}`,
      },
    );
  if (!allowsMethod(agreement, 'media'))
    throw new LtError(
      'LT_METHOD_NOT_ALLOWED',
      `agreement ${id} does not allow method media (it allows ${agreement.methods.join(', ')}): no package is made under it`,
      {
        details: { agreement: id, methods: agreement.methods, required: 'media' },
        hint: 'a package (decree method (d)) needs an agreement with method media: its owner adds it (lienthong agreement update <id> --methods …, approved again) or the subscriber requests one',
      },
    );
  if (!isActive(agreement))
    throw new LtError('LT_FORBIDDEN', `agreement ${id} is not active (${agreement.status})`, {
      details: { agreement: id, status: agreement.status },
      hint: 'a package is made only under an approved agreement within its validity',
    });
  const unshared = unsharedFilterFields(agreement.filter, agreement.fields);
  if (unshared.length > 0)
    throw new LtError('LT_AGREEMENT_INVALID', `agreement ${id} filters on fields it does not share`, {
      details: { unshared },
      hint: 'update the agreement’s fields or filter',
    });
  return {
    id: agreement.id,
    revision: agreement.revision,
    subscriber: agreement.subscriber,
    fields: agreement.fields,
    filterText: agreement.filterText,
    matches: compileFilter(agreement.filter, dataset),
  };
}

/** `lienthong export`: a signed package of a dataset (or an agreement's part of it) from the NGDB. */
export async function runExport(options: ExportCommandOptions): Promise<void> {
  const env = readEnv();
  const dictionary = loadDictionary();
  const dataset = getDataset(dictionary, options.dataset);
  const principal = env.KAFKA_PRINCIPAL ?? principals.operator;
  const platform = await createPool({ url: env.DATABASE_URL, schema: options.platformSchema });
  const ngdb = await createPool({ url: env.DATABASE_URL, schema: options.schema });
  const target = options.agreement ? `agreement:${options.agreement}` : `dataset:${dataset.id}`;
  const progress = progressReporter('export');
  try {
    await migrate(platform, 'platform');
    const agreement = options.agreement
      ? await agreementScope(platform, dictionary, options.agreement, dataset)
      : undefined;
    const recipient = options.for
      ? {
          agency: options.for,
          publicKey: readRecipientPublicKey(
            options.recipientKey ?? agencyKeyFiles(env.LIENTHONG_HOME, options.for).publicKeyFile,
          ).publicKey,
        }
      : undefined;
    const started = Date.now();
    const result = await exportPackage({
      ngdb,
      dataset,
      ...(agreement ? { agreement } : {}),
      ...(options.asOf ? { asOf: options.asOf } : {}),
      out: options.out,
      signingKey: ensurePlatformSigningKey(env.LIENTHONG_HOME),
      ...(recipient ? { recipient } : {}),
      createdBy: principal,
      codec: options.codec,
      onProgress: (written) => progress.update(written, null),
    });
    progress.stop();
    const seconds = (Date.now() - started) / 1000;
    await audit(platform, {
      principal,
      action: 'package.export',
      target,
      outcome: 'done',
      detail: summary(result.manifest, { file: result.file, bytes: result.bytes }),
    });
    printManifest(result.manifest, result.file, result.bytes);
    console.log(
      `\n${result.manifest.records} records in ${seconds.toFixed(1)} s; signed with ${platformVerifyKeyFile(env.LIENTHONG_HOME)}'s key` +
        '\n(the importing site needs a copy of that public key: --platform-key)',
    );
  } catch (error) {
    progress.stop();
    await audit(platform, {
      principal,
      action: 'package.export',
      target,
      outcome: outcomeOf(error),
      detail: { code: toLtError(error).code, reason: toLtError(error).message, out: options.out },
    });
    throw error;
  } finally {
    await ngdb.end();
    await platform.end();
  }
}

/** `--into ngdb` or `--into agency:<CODE>`. */
export function parseTarget(text: string): ImportTarget {
  if (text === 'ngdb') return { kind: 'ngdb' };
  const match = /^agency:([A-Z][A-Z0-9-]*)$/.exec(text);
  if (match) return { kind: 'agency', agency: match[1]! };
  throw new LtError('LT_CONFIG_INVALID', `--into ${text}: expected ngdb or agency:<CODE>`, {
    hint: 'e.g. --into ngdb, or --into agency:UBND-HN',
  });
}

/** The schema an import writes to by default: the NGDB's, or the agency's copy (its subscription's schema). */
function defaultSchema(target: ImportTarget, manifest: Manifest): string {
  if (target.kind === 'ngdb') return 'lt_ngdb';
  return manifest.agreement
    ? `lt_share_${manifest.agreement.id.replace(/-/g, '_')}`
    : `lt_package_${manifest.dataset.replace(/[.-]/g, '_')}`;
}

/** `lienthong import`: verifies a package completely, then loads it, resuming an interrupted import. */
export async function runImport(file: string, options: ImportCommandOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const target = parseTarget(options.into);
  const principal =
    env.KAFKA_PRINCIPAL ??
    (target.kind === 'agency' ? principals.agency(target.agency) : principals.operator);
  const platform = await createPool({ url: env.DATABASE_URL, schema: options.platformSchema });
  const progress = progressReporter('import');
  let pool: Pool | undefined;
  try {
    await migrate(platform, 'platform');
    const verifyKey = readVerifyKey(options.platformKey ?? platformVerifyKeyFile(env.LIENTHONG_HOME));
    const keyFile =
      options.key ??
      (target.kind === 'agency'
        ? agencyKeyFiles(env.LIENTHONG_HOME, target.agency).privateKeyFile
        : undefined);
    const verified = await verifyPackage({
      file,
      dictionary: loadDictionary(),
      verifyKey: verifyKey.publicKey,
      target,
      ...(keyFile ? { recipientKey: () => readRecipientPrivateKey(keyFile) } : {}),
    });
    console.log(
      `verified: ${file} (signature, ${verified.manifest.parts.length} part(s), ${verified.manifest.records} records, schema, recipient)`,
    );
    const schema = options.schema ?? defaultSchema(target, verified.manifest);
    pool = await createPool({ url: env.DATABASE_URL, schema });
    const started = Date.now();
    const result = await importPackage({
      verified,
      target,
      pool,
      log,
      batchSize: options.batch,
      onProgress: ({ applied, total }) => progress.update(applied, total),
    });
    progress.stop();
    await audit(platform, {
      principal,
      action: 'package.import',
      target: `${describeTarget(target)}/${schema}`,
      outcome: 'done',
      detail: { ...summary(verified.manifest, { file }), ...result },
    });
    const seconds = (Date.now() - started) / 1000;
    printTable(
      ['package', 'into', 'records', 'resumed after', 'rows changed', 'seconds'],
      [
        [
          result.packageId,
          `${describeTarget(target)} (schema ${schema})`,
          String(result.records),
          String(result.resumedFrom),
          result.alreadyImported ? 'none: imported before' : String(result.changed),
          seconds.toFixed(1),
        ],
      ],
    );
  } catch (error) {
    progress.stop();
    await audit(platform, {
      principal,
      action: 'package.import',
      target: describeTarget(target),
      outcome: outcomeOf(error),
      detail: { file, code: toLtError(error).code, reason: toLtError(error).message },
    });
    throw error;
  } finally {
    await pool?.end();
    await platform.end();
  }
}

/** `lienthong package keys issue --agency X`: the agency's X25519 key pair for encrypted packages. */
export function runKeysIssue(options: { agency: string }): void {
  const env = readEnv();
  const made = issueAgencyKey(env.LIENTHONG_HOME, options.agency);
  console.log(
    `agency ${options.agency}: package key ${made.keyId.slice(0, 16)}…\n` +
      `  public  ${made.publicKeyFile}   (the platform encrypts to it: lienthong export --for ${options.agency})\n` +
      `  private ${made.privateKeyFile}   (owner-only; the agency's import decrypts with it: --key)`,
  );
}

/** `lienthong package verify <file>`: every check of an import, nothing loaded; prints the manifest. */
export async function runVerify(
  file: string,
  options: { into: string; platformKey?: string; key?: string },
): Promise<void> {
  const env = readEnv();
  const target = parseTarget(options.into);
  const keyFile =
    options.key ??
    (target.kind === 'agency' ? agencyKeyFiles(env.LIENTHONG_HOME, target.agency).privateKeyFile : undefined);
  const verified = await verifyPackage({
    file,
    dictionary: loadDictionary(),
    verifyKey: readVerifyKey(options.platformKey ?? platformVerifyKeyFile(env.LIENTHONG_HOME)).publicKey,
    target,
    ...(keyFile ? { recipientKey: () => readRecipientPrivateKey(keyFile) } : {}),
  });
  printManifest(verified.manifest, file, null);
  console.log(`\nverified for ${describeTarget(target)}: nothing was loaded`);
}

function summary(manifest: Manifest, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    ...extra,
    packageId: manifest.packageId,
    dataset: manifest.dataset,
    records: manifest.records,
    agreement: manifest.agreement?.id ?? null,
    recipient: manifest.recipient?.agency ?? null,
    encrypted: manifest.recipient?.encryption !== null && manifest.recipient !== null,
    covers: manifest.covers,
    sha256: manifest.parts.map((part) => part.sha256),
  };
}

function printManifest(manifest: Manifest, file: string, bytes: number | null): void {
  printTable(
    ['package', 'value'],
    [
      ['file', bytes === null ? file : `${file} (${bytes} bytes)`],
      ['id', manifest.packageId],
      ['dataset', `${manifest.dataset} (${manifest.fields.length} fields)`],
      ['agreement', manifest.agreement ? `${manifest.agreement.id} r${manifest.agreement.revision}` : '—'],
      ['records', String(manifest.records)],
      [
        'covers',
        manifest.covers.kind === 'as-of'
          ? `as of ${manifest.covers.asOf} (read at ${manifest.covers.snapshotAt})`
          : `current state at ${manifest.covers.snapshotAt}`,
      ],
      [
        'recipient',
        manifest.recipient
          ? `${manifest.recipient.agency}${manifest.recipient.encryption ? ' (encrypted to its key)' : ' (not encrypted)'}`
          : 'any (not encrypted)',
      ],
      ['created', `${manifest.createdAt} by ${manifest.createdBy}`],
      ['signer', `Ed25519 ${manifest.signer.keyId.slice(0, 16)}…`],
      ...manifest.parts.map((part) => [`part ${part.name}`, `${part.bytes} bytes, sha256 ${part.sha256}`]),
    ],
  );
}
