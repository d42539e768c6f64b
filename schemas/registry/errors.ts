/**
 * The Confluent Schema Registry error contract: an HTTP status plus a numeric `error_code`
 * (40401 subject not found, 40402 version not found, 40403 schema not found, 409 incompatible,
 * 42201 invalid schema, 42202 invalid version, 42203 invalid compatibility level, 50001 store error, …).
 */
export const RegistryErrors = {
  SUBJECT_NOT_FOUND: { status: 404, errorCode: 40401 },
  VERSION_NOT_FOUND: { status: 404, errorCode: 40402 },
  SCHEMA_NOT_FOUND: { status: 404, errorCode: 40403 },
  SUBJECT_SOFT_DELETED: { status: 404, errorCode: 40404 },
  SUBJECT_NOT_SOFT_DELETED: { status: 404, errorCode: 40405 },
  VERSION_SOFT_DELETED: { status: 404, errorCode: 40406 },
  VERSION_NOT_SOFT_DELETED: { status: 404, errorCode: 40407 },
  SUBJECT_CONFIG_NOT_FOUND: { status: 404, errorCode: 40408 },
  INCOMPATIBLE_SCHEMA: { status: 409, errorCode: 409 },
  INVALID_SCHEMA: { status: 422, errorCode: 42201 },
  INVALID_VERSION: { status: 422, errorCode: 42202 },
  INVALID_COMPATIBILITY_LEVEL: { status: 422, errorCode: 42203 },
  STORE_ERROR: { status: 500, errorCode: 50001 },
} as const;

export type RegistryErrorKind = keyof typeof RegistryErrors;

export class RegistryError extends Error {
  readonly status: number;
  readonly errorCode: number;
  readonly kind: RegistryErrorKind;

  constructor(kind: RegistryErrorKind, message: string) {
    super(message);
    this.name = 'RegistryError';
    this.kind = kind;
    this.status = RegistryErrors[kind].status;
    this.errorCode = RegistryErrors[kind].errorCode;
  }
}
