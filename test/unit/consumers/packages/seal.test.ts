import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decipherFor,
  manifestSignatureValid,
  sealerFor,
  signManifest,
} from '../../../../consumers/packages/seal.ts';

const manifest = Buffer.from('{"format":"lienthong-package/1","records":3}');
const packageId = '019ad000-0000-7000-8000-000000000001';

describe('package seal', () => {
  const platform = generateKeyPairSync('ed25519');

  it('a manifest signature verifies with the platform key, and not after one changed byte or with another key', () => {
    const signature = signManifest(manifest, platform.privateKey);
    expect(manifestSignatureValid(manifest, signature, platform.publicKey)).toBe(true);
    const changed = Buffer.from(manifest);
    changed[changed.length - 2]! ^= 0x01;
    expect(manifestSignatureValid(changed, signature, platform.publicKey)).toBe(false);
    expect(manifestSignatureValid(manifest, signature, generateKeyPairSync('ed25519').publicKey)).toBe(false);
    // a bare Ed25519 signature of the same bytes (no package context) is not a package signature
    expect(manifestSignatureValid(manifest, Buffer.alloc(64), platform.publicKey)).toBe(false);
  });

  it('a part encrypted for an agency opens with its key only, and a changed byte fails the tag', () => {
    const agency = generateKeyPairSync('x25519');
    const sealer = sealerFor(agency.publicKey, packageId);
    const { cipher, iv } = sealer.cipherFor('records.avro');
    const plain = Buffer.from('the records of a package');
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    const tag = cipher.getAuthTag();
    expect(sealed.includes(Buffer.from('records'))).toBe(false);

    const open = (key = agency.privateKey, bytes = sealed, part = 'records.avro', id = packageId) => {
      const decipher = decipherFor(key, id, sealer.ephemeralPublicKey, { name: part, iv, tag });
      return Buffer.concat([decipher.update(bytes), decipher.final()]);
    };
    expect(open()).toEqual(plain);
    expect(() => open(generateKeyPairSync('x25519').privateKey)).toThrow();
    const flipped = Buffer.from(sealed);
    flipped[0]! ^= 0x01;
    expect(() => open(agency.privateKey, flipped)).toThrow();
    expect(() => open(agency.privateKey, sealed, 'other.avro')).toThrow(); // bound to the part's name
    expect(() =>
      open(agency.privateKey, sealed, 'records.avro', '019ad000-0000-7000-8000-000000000002'),
    ).toThrow();
  });
});
