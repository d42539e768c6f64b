import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LtError } from '../../infra/errors.ts';
import { securityDir } from '../../infra/security/pki.ts';

/**
 * The keys of data packages, kept under `<LIENTHONG_HOME>/security/packages/` and never committed:
 *   signing.key, signing.pub      the platform's Ed25519 key pair; it signs every package's manifest. Made at
 *                                 first export. signing.pub is what an importing site needs (a copy of it).
 *   agencies/<CODE>.key, .pub     an agency's X25519 key pair (`lienthong package keys issue`); an export
 *                                 `--for <CODE>` encrypts to the public key, the agency's import decrypts with
 *                                 the private one. An agency may make its own pair and hand over only the .pub.
 * Private keys are PKCS#8 PEM, public keys SPKI PEM; private files are owner-only (0600), in 0700 folders.
 */
export function packageKeysDir(home: string): string {
  return join(securityDir(home), 'packages');
}

export function platformSigningKeyFile(home: string): string {
  return join(packageKeysDir(home), 'signing.key');
}

export function platformVerifyKeyFile(home: string): string {
  return join(packageKeysDir(home), 'signing.pub');
}

const AGENCY = /^[A-Z][A-Z0-9-]*$/;

export function agencyKeyFiles(
  home: string,
  agency: string,
): { privateKeyFile: string; publicKeyFile: string } {
  if (!AGENCY.test(agency)) throw new Error(`invalid agency code "${agency}"`);
  const dir = join(packageKeysDir(home), 'agencies');
  return { privateKeyFile: join(dir, `${agency}.key`), publicKeyFile: join(dir, `${agency}.pub`) };
}

/** A public key's id: the SHA-256 of its SPKI DER, hex — what a manifest names its signer and recipient key by. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

/**
 * Writes `content` to `file` only if it does not exist yet, atomically: written aside (mode `mode`) and linked
 * into place, so two processes making a key at once never read a half-written file; the first link wins and
 * the loser returns false (the caller reads the winner's key).
 */
function createOnce(file: string, content: string, mode: number): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const aside = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, content, { mode, flag: 'wx' });
  try {
    linkSync(aside, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Replaces `file` with `content` atomically (a public key derived from its private key: same content). */
function writeReplacing(file: string, content: string, mode: number): void {
  const aside = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, content, { mode });
  renameSync(aside, file);
}

/** The platform's signing key, made on first use (Ed25519). Only the exporting platform calls this. */
export function ensurePlatformSigningKey(home: string): SigningKey {
  const file = platformSigningKeyFile(home);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    createOnce(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  }
  const privateKey = createPrivateKey(readFileSync(file));
  const publicKey = createPublicKey(privateKey);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const pub = platformVerifyKeyFile(home);
  if (!existsSync(pub) || readFileSync(pub, 'utf8') !== pem) writeReplacing(pub, pem, 0o644);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

function readKey<T>(file: string, what: string, hint: string, parse: (pem: Buffer) => T): T {
  if (!existsSync(file))
    throw new LtError('LT_PACKAGE_KEY_MISSING', `${what} not found at ${file}`, {
      details: { file },
      hint,
    });
  try {
    return parse(readFileSync(file));
  } catch (cause) {
    throw new LtError('LT_PACKAGE_KEY_MISSING', `${file} does not hold ${what} (PEM)`, { cause, hint });
  }
}

/** The platform's public key an import verifies against; never made here (a new key would verify nothing). */
export function readVerifyKey(file: string): { publicKey: KeyObject; keyId: string } {
  const publicKey = readKey(
    file,
    "the platform's package verification key",
    'copy signing.pub from the exporting platform’s LIENTHONG_HOME/security/packages/ and pass --platform-key',
    (pem) => createPublicKey(pem),
  );
  if (publicKey.asymmetricKeyType !== 'ed25519')
    throw new LtError('LT_PACKAGE_KEY_MISSING', `${file} is not an Ed25519 public key`, {
      hint: 'pass the platform’s signing.pub (made by the first export)',
    });
  return { publicKey, keyId: keyIdOf(publicKey) };
}

/** An agency's X25519 public key an export encrypts to. */
export function readRecipientPublicKey(file: string): { publicKey: KeyObject; keyId: string } {
  const publicKey = readKey(
    file,
    'the recipient agency’s public key',
    'make the pair with `lienthong package keys issue --agency <CODE>`, or pass the agency’s own --recipient-key file',
    (pem) => createPublicKey(pem),
  );
  if (publicKey.asymmetricKeyType !== 'x25519')
    throw new LtError('LT_PACKAGE_KEY_MISSING', `${file} is not an X25519 public key`, {
      hint: 'a recipient key is X25519 (`lienthong package keys issue` makes one)',
    });
  return { publicKey, keyId: keyIdOf(publicKey) };
}

/** An agency's X25519 private key its import decrypts with. */
export function readRecipientPrivateKey(file: string): KeyObject {
  const privateKey = readKey(
    file,
    'the recipient agency’s private key',
    'pass --key with the agency’s private key file (made by `lienthong package keys issue`)',
    (pem) => createPrivateKey(pem),
  );
  if (privateKey.asymmetricKeyType !== 'x25519')
    throw new LtError('LT_PACKAGE_KEY_MISSING', `${file} is not an X25519 private key`, {
      hint: 'a recipient key is X25519 (`lienthong package keys issue` makes one)',
    });
  return privateKey;
}

/** Makes an agency's X25519 key pair; refuses to replace one (packages encrypted to it would be lost). */
export function issueAgencyKey(
  home: string,
  agency: string,
): { privateKeyFile: string; publicKeyFile: string; keyId: string } {
  const files = agencyKeyFiles(home, agency);
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const made = createOnce(
    files.privateKeyFile,
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    0o600,
  );
  if (!made)
    throw new LtError('LT_CONFIG_INVALID', `agency ${agency} already has a package key`, {
      details: { file: files.privateKeyFile },
      hint: 'packages encrypted to it need it: keep it; remove the file yourself only if it is truly unused',
    });
  writeReplacing(files.publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
  return { ...files, keyId: keyIdOf(publicKey) };
}
