export { exportPackage, type AgreementScope, type ExportOptions, type ExportResult } from './export.ts';
export { importPackage, type ImportOptions, type ImportProgress, type ImportResult } from './import.ts';
export {
  describeTarget,
  readPackageRecords,
  verifyPackage,
  type ImportTarget,
  type VerifiedPackage,
  type VerifyOptions,
} from './verify.ts';
export {
  agencyKeyFiles,
  ensurePlatformSigningKey,
  issueAgencyKey,
  keyIdOf,
  packageKeysDir,
  platformSigningKeyFile,
  platformVerifyKeyFile,
  readRecipientPrivateKey,
  readRecipientPublicKey,
  readVerifyKey,
  type SigningKey,
} from './keys.ts';
export { ManifestSchema, RECORDS_PART, type Manifest, type ManifestPart } from './manifest.ts';
export { readFrame, type PackageFrame } from './layout.ts';
