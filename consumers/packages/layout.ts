import { open } from 'node:fs/promises';
import { LtError } from '../../infra/errors.ts';

/*
 * A package is one file (friendly to removable media: one thing to copy, one thing to check):
 *
 *   package   = magic part+ manifest signature trailer
 *   magic     = "LTPKG/1\n"                                   8 bytes
 *   part      = the part's bytes, as the manifest lists them   (offset, length, SHA-256 in the manifest)
 *   manifest  = UTF-8 JSON (manifest.ts)                       1 byte to 1 MiB
 *   signature = Ed25519 signature of the manifest (seal.ts)    64 bytes
 *   trailer   = manifest length, uint32 big-endian ‖ magic     12 bytes
 *
 * The manifest comes after the parts so an export writes the file in one pass (the parts' hashes are known
 * only at their end); a reader finds it from the trailer at the file's end.
 */
export const MAGIC = Buffer.from('LTPKG/1\n', 'latin1');
export const SIGNATURE_BYTES = 64;
export const TRAILER_BYTES = 4 + MAGIC.length;
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The bytes after the last part: manifest, signature, trailer. */
export function packageTail(manifest: Buffer, signature: Buffer): Buffer {
  if (signature.length !== SIGNATURE_BYTES) throw new Error('an Ed25519 signature is 64 bytes');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(manifest.length);
  return Buffer.concat([manifest, signature, length, MAGIC]);
}

/** Where everything of a package file is, read from its ends; nothing of it is trusted yet. */
export interface PackageFrame {
  size: number;
  /** Offset of the first byte after the parts (where the manifest starts). */
  partsEnd: number;
  manifest: Buffer;
  signature: Buffer;
}

function damaged(file: string, reason: string): LtError {
  return new LtError('LT_PACKAGE_INVALID', `${file} is not a lienthong package: ${reason}`, {
    details: { file, reason },
    hint: 'copy the package from its medium again; if it stays so, ask the exporting platform for a new one',
  });
}

/** Reads the frame of a package file: bounded (the manifest at most 1 MiB), checking the magic at both ends. */
export async function readFrame(file: string): Promise<PackageFrame> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < MAGIC.length + SIGNATURE_BYTES + TRAILER_BYTES + 1) throw damaged(file, 'too short');
    const head = Buffer.alloc(MAGIC.length);
    await handle.read(head, 0, head.length, 0);
    if (!head.equals(MAGIC)) throw damaged(file, 'no package magic at its start');
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await handle.read(trailer, 0, TRAILER_BYTES, size - TRAILER_BYTES);
    if (!trailer.subarray(4).equals(MAGIC)) throw damaged(file, 'no package trailer at its end (truncated?)');
    const manifestBytes = trailer.readUInt32BE(0);
    const partsEnd = size - TRAILER_BYTES - SIGNATURE_BYTES - manifestBytes;
    if (manifestBytes < 1 || manifestBytes > MAX_MANIFEST_BYTES || partsEnd < MAGIC.length)
      throw damaged(file, `impossible manifest length ${manifestBytes}`);
    const manifest = Buffer.alloc(manifestBytes);
    await handle.read(manifest, 0, manifestBytes, partsEnd);
    const signature = Buffer.alloc(SIGNATURE_BYTES);
    await handle.read(signature, 0, SIGNATURE_BYTES, partsEnd + manifestBytes);
    return { size, partsEnd, manifest, signature };
  } finally {
    await handle.close();
  }
}
