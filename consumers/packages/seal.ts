import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  verify,
  type CipherGCM,
  type DecipherGCM,
  type KeyObject,
} from 'node:crypto';

/*
 * The cryptography of a package (docs/packages.md, "Signature and encryption"):
 *
 * Signature: Ed25519 over  "lienthong package manifest v1\n" ‖ manifest bytes  (the manifest exactly as stored).
 * The manifest names every part's length and SHA-256, so the signature covers every byte of the package.
 *
 * Encryption for one recipient (optional): an ephemeral X25519 key pair per package;
 *   shared = X25519(ephemeral private, recipient public)
 *   key    = HKDF-SHA256(ikm = shared, salt = package id (UTF-8),
 *                        info = "lienthong package v1 aes-256-gcm" ‖ ephemeral public (32) ‖ recipient public (32))
 *   each part: AES-256-GCM under `key` with its own random 96-bit IV, AAD = package id ‖ ":" ‖ part name;
 *   its IV and 128-bit tag are in the (signed) manifest, beside the ephemeral public key and the recipient key id.
 * The part hashes are of the stored (encrypted) bytes, so a package is verified before anything is decrypted.
 */
const SIGNATURE_CONTEXT = Buffer.from('lienthong package manifest v1\n');
const KDF_INFO = Buffer.from('lienthong package v1 aes-256-gcm');

export function signManifest(manifest: Buffer, privateKey: KeyObject): Buffer {
  return sign(null, Buffer.concat([SIGNATURE_CONTEXT, manifest]), privateKey);
}

export function manifestSignatureValid(manifest: Buffer, signature: Buffer, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.concat([SIGNATURE_CONTEXT, manifest]), publicKey, signature);
  } catch {
    return false;
  }
}

/** An X25519 public key as its 32 raw bytes, base64url (the JWK `x`). */
export function rawPublicKey(publicKey: KeyObject): string {
  const { x } = publicKey.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new Error('not an OKP public key');
  return x;
}

function x25519PublicKey(raw: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw }, format: 'jwk' });
}

function packageKey(shared: Buffer, packageId: string, ephemeral: string, recipient: string): Buffer {
  const info = Buffer.concat([
    KDF_INFO,
    Buffer.from(ephemeral, 'base64url'),
    Buffer.from(recipient, 'base64url'),
  ]);
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(packageId, 'utf8'), info, 32));
}

function aad(packageId: string, part: string): Buffer {
  return Buffer.from(`${packageId}:${part}`, 'utf8');
}

/** The encryption of one package for one recipient: the key material once, then one cipher per part. */
export interface PackageSealer {
  /** Base64url raw X25519 public key of the ephemeral pair, for the manifest. */
  ephemeralPublicKey: string;
  cipherFor(part: string): { cipher: CipherGCM; iv: Buffer };
}

export function sealerFor(recipientPublicKey: KeyObject, packageId: string): PackageSealer {
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublicKey = rawPublicKey(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientPublicKey });
  const key = packageKey(shared, packageId, ephemeralPublicKey, rawPublicKey(recipientPublicKey));
  return {
    ephemeralPublicKey,
    cipherFor(part) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(packageId, part));
      return { cipher, iv };
    },
  };
}

/** The decipher of one part; its `final()` throws when the tag does not match. */
export function decipherFor(
  recipientPrivateKey: KeyObject,
  packageId: string,
  ephemeralPublicKey: string,
  part: { name: string; iv: Buffer; tag: Buffer },
): DecipherGCM {
  const shared = diffieHellman({
    privateKey: recipientPrivateKey,
    publicKey: x25519PublicKey(ephemeralPublicKey),
  });
  const recipient = rawPublicKey(createPublicKey(recipientPrivateKey));
  const key = packageKey(shared, packageId, ephemeralPublicKey, recipient);
  const decipher = createDecipheriv('aes-256-gcm', key, part.iv);
  decipher.setAAD(aad(packageId, part.name));
  decipher.setAuthTag(part.tag);
  return decipher;
}
