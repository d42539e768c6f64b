import avro from 'avsc';
import { inTransaction, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import {
  checkCompatibility,
  CompatibilityLevels,
  type CompatibilityLevel,
  type Incompatibility,
} from './compatibility.ts';
import { RegistryError } from './errors.ts';

/** One registered version of a subject, as the REST API returns it. */
export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  schema: string;
}

/** Parses and validates an Avro schema text; the parser's reason becomes a 42201. */
export function parseAvroSchema(schemaText: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(schemaText);
  } catch (error) {
    throw new RegistryError('INVALID_SCHEMA', `Invalid schema: not JSON: ${(error as Error).message}`);
  }
  try {
    avro.Type.forSchema(json as avro.Schema);
  } catch (error) {
    throw new RegistryError('INVALID_SCHEMA', `Invalid schema: ${(error as Error).message}`);
  }
  return json;
}

/** The identity of a schema: its JSON with object keys sorted and no whitespace. */
export function schemaIdentity(json: unknown): string {
  const sort = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sort)
      : value && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, v]) => [k, sort(v)]),
          )
        : value;
  return JSON.stringify(sort(json));
}

export function parseCompatibilityLevel(value: unknown): CompatibilityLevel {
  const level = typeof value === 'string' ? value.toUpperCase() : '';
  if (!(CompatibilityLevels as readonly string[]).includes(level)) {
    throw new RegistryError(
      'INVALID_COMPATIBILITY_LEVEL',
      `Invalid compatibility level ${JSON.stringify(value)}; expected one of ${CompatibilityLevels.join(', ')}`,
    );
  }
  return level as CompatibilityLevel;
}

/** `latest` (any case), `-1` or a positive integer, as Confluent's `VersionId` parses them; anything else is a 42202. */
export function parseVersion(value: string): number | 'latest' {
  const trimmed = value.trim();
  if (trimmed.toLowerCase() === 'latest' || trimmed === '-1') return 'latest';
  const version = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isInteger(version) || version < 1 || version > 2 ** 31 - 1) {
    throw new RegistryError(
      'INVALID_VERSION',
      `The specified version '${value}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
    );
  }
  return version;
}

type Db = Pool | PoolClient;

interface VersionRow {
  version: number;
  schema_id: number;
  deleted: boolean;
  schema_text: string;
}

async function versionsOf(db: Db, subject: string, includeDeleted: boolean): Promise<VersionRow[]> {
  const { rows } = await db.query<VersionRow>(
    `SELECT v.version, v.schema_id, v.deleted, s.schema_text
       FROM registry_subject_version v JOIN registry_schema s ON s.id = v.schema_id
      WHERE v.subject = $1 AND ($2 OR NOT v.deleted)
      ORDER BY v.version`,
    [subject, includeDeleted],
  );
  return rows;
}

async function requireVersions(db: Db, subject: string, includeDeleted = false): Promise<VersionRow[]> {
  const rows = await versionsOf(db, subject, includeDeleted);
  if (rows.length === 0) throw new RegistryError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`);
  return rows;
}

/** The schema registry's state in PostgreSQL. Every write is one transaction: nothing is half-registered. */
export class RegistryStore {
  private readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  async compatibilityFor(subject: string | null, db: Db = this.pool): Promise<CompatibilityLevel> {
    const { rows } = await db.query<{ subject: string; compatibility: CompatibilityLevel }>(
      `SELECT subject, compatibility FROM registry_config WHERE subject = ANY($1)`,
      [subject === null ? [''] : [subject, '']],
    );
    const own = rows.find((row) => row.subject === subject);
    return (own ?? rows.find((row) => row.subject === ''))?.compatibility ?? 'BACKWARD';
  }

  /** Subject-level level only; 40408 unless `fallBackToGlobal`. */
  async getConfig(subject: string | null, fallBackToGlobal = false): Promise<CompatibilityLevel> {
    if (subject === null || fallBackToGlobal) return this.compatibilityFor(subject);
    const { rows } = await this.pool.query<{ compatibility: CompatibilityLevel }>(
      'SELECT compatibility FROM registry_config WHERE subject = $1',
      [subject],
    );
    if (!rows[0]) {
      throw new RegistryError(
        'SUBJECT_CONFIG_NOT_FOUND',
        `Subject '${subject}' does not have subject-level compatibility configured`,
      );
    }
    return rows[0].compatibility;
  }

  async setConfig(subject: string | null, level: CompatibilityLevel): Promise<void> {
    await this.pool.query(
      `INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2)
       ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility`,
      [subject ?? '', level],
    );
  }

  /** Removes the subject-level level and returns it; 40401 when the subject has none (as Confluent answers). */
  async deleteConfig(subject: string): Promise<CompatibilityLevel> {
    const { rows } = await this.pool.query<{ compatibility: CompatibilityLevel }>(
      'DELETE FROM registry_config WHERE subject = $1 RETURNING compatibility',
      [subject],
    );
    if (!rows[0]) throw new RegistryError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`);
    return rows[0].compatibility;
  }

  /** Registers `schemaText` under `subject`; the same schema returns the same id and version again. */
  async register(subject: string, schemaText: string): Promise<{ id: number; version: number }> {
    const json = parseAvroSchema(schemaText);
    const identity = schemaIdentity(json);
    return inTransaction(this.pool, async (db) => {
      await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`registry:${subject}`]);
      const live = await versionsOf(db, subject, false);
      const existing = await db.query<{ id: number }>(
        `SELECT id FROM registry_schema WHERE schema_type = 'AVRO' AND identity = $1`,
        [identity],
      );
      const knownId = existing.rows[0]?.id;
      const same = live.find((row) => row.schema_id === knownId);
      if (same) return { id: same.schema_id, version: same.version };

      const level = await this.compatibilityFor(subject, db);
      const problems = checkCompatibility(
        level,
        json,
        live.map((row) => JSON.parse(row.schema_text) as unknown),
      );
      if (problems.length > 0) throw incompatible(subject, problems, level);

      let id = knownId;
      if (id === undefined) {
        await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['registry:schema-ids']);
        const inserted = await db.query<{ id: number }>(
          `INSERT INTO registry_schema (schema_type, schema_text, identity) VALUES ('AVRO', $1, $2)
           ON CONFLICT (schema_type, identity) DO UPDATE SET identity = EXCLUDED.identity RETURNING id`,
          [JSON.stringify(json), identity],
        );
        id = inserted.rows[0]!.id;
      }
      const next = await db.query<{ version: number }>(
        'SELECT COALESCE(MAX(version), 0) + 1 AS version FROM registry_subject_version WHERE subject = $1',
        [subject],
      );
      const version = next.rows[0]!.version;
      await db.query(
        'INSERT INTO registry_subject_version (subject, version, schema_id) VALUES ($1, $2, $3)',
        [subject, version, id],
      );
      // Confluent tombstones earlier soft-deleted versions of the same schema in the subject
      await db.query(
        'DELETE FROM registry_subject_version WHERE subject = $1 AND schema_id = $2 AND deleted AND version < $3',
        [subject, id, version],
      );
      return { id, version };
    });
  }

  /** Is `schemaText` already registered under `subject`? */
  async lookup(subject: string, schemaText: string, includeDeleted = false): Promise<SubjectVersion> {
    const identity = schemaIdentity(parseAvroSchema(schemaText));
    const rows = await requireVersions(this.pool, subject, includeDeleted);
    const { rows: ids } = await this.pool.query<{ id: number }>(
      `SELECT id FROM registry_schema WHERE schema_type = 'AVRO' AND identity = $1`,
      [identity],
    );
    const match = rows.find((row) => row.schema_id === ids[0]?.id);
    if (!match) throw new RegistryError('SCHEMA_NOT_FOUND', 'Schema not found');
    return { subject, version: match.version, id: match.schema_id, schema: match.schema_text };
  }

  /** A schema by id while some subject version (soft-deleted included) uses it: a hard delete removes the id. */
  async schemaById(id: number): Promise<{ schema: string; schemaType: string }> {
    const { rows } = await this.pool.query<{ schema_text: string; schema_type: string }>(
      `SELECT schema_text, schema_type FROM registry_schema s
        WHERE id = $1 AND EXISTS (SELECT 1 FROM registry_subject_version v WHERE v.schema_id = s.id)`,
      [id],
    );
    if (!rows[0]) throw new RegistryError('SCHEMA_NOT_FOUND', `Schema ${id} not found`);
    return { schema: rows[0].schema_text, schemaType: rows[0].schema_type };
  }

  async versionsOfSchema(
    id: number,
    includeDeleted = false,
  ): Promise<{ subject: string; version: number }[]> {
    await this.schemaById(id);
    const { rows } = await this.pool.query<{ subject: string; version: number }>(
      `SELECT subject, version FROM registry_subject_version WHERE schema_id = $1 AND ($2 OR NOT deleted) ORDER BY subject, version`,
      [id, includeDeleted],
    );
    return rows;
  }

  async subjects(includeDeleted = false): Promise<string[]> {
    const { rows } = await this.pool.query<{ subject: string }>(
      `SELECT DISTINCT subject FROM registry_subject_version WHERE $1 OR NOT deleted ORDER BY subject`,
      [includeDeleted],
    );
    return rows.map((row) => row.subject);
  }

  async versions(subject: string, includeDeleted = false): Promise<number[]> {
    return (await requireVersions(this.pool, subject, includeDeleted)).map((row) => row.version);
  }

  /** One version; `latest` is always the latest live version, even with `includeDeleted` (as in Confluent). */
  async version(
    subject: string,
    version: number | 'latest',
    includeDeleted = false,
  ): Promise<SubjectVersion> {
    const rows = await requireVersions(this.pool, subject, includeDeleted);
    const row =
      version === 'latest'
        ? rows.filter((candidate) => !candidate.deleted).at(-1)
        : rows.find((candidate) => candidate.version === version);
    if (!row) throw new RegistryError('VERSION_NOT_FOUND', `Version ${version} not found.`);
    return { subject, version: row.version, id: row.schema_id, schema: row.schema_text };
  }

  /**
   * Soft delete first; `permanent` only removes what was soft-deleted before (Confluent's two steps). A soft
   * delete also drops the subject-level compatibility level, as Confluent's does.
   */
  async deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    return inTransaction(this.pool, async (db) => {
      const all = await requireVersions(db, subject, true);
      if (!permanent) {
        const live = all.filter((row) => !row.deleted);
        if (live.length === 0)
          throw new RegistryError(
            'SUBJECT_SOFT_DELETED',
            `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`,
          );
        await db.query('UPDATE registry_subject_version SET deleted = true WHERE subject = $1', [subject]);
        await db.query('DELETE FROM registry_config WHERE subject = $1', [subject]);
        return live.map((row) => row.version);
      }
      if (all.some((row) => !row.deleted)) {
        throw new RegistryError(
          'SUBJECT_NOT_SOFT_DELETED',
          `Subject '${subject}' was not deleted first before being permanently deleted`,
        );
      }
      await db.query('DELETE FROM registry_subject_version WHERE subject = $1', [subject]);
      return all.map((row) => row.version);
    });
  }

  /**
   * Soft or permanent delete of one version; `latest` is the latest live version in both cases (so a permanent
   * delete of `latest` is refused with 40407, as in Confluent). Soft-deleting the last live version also drops
   * the subject-level compatibility level.
   */
  async deleteVersion(subject: string, version: number | 'latest', permanent: boolean): Promise<number> {
    return inTransaction(this.pool, async (db) => {
      const all = await requireVersions(db, subject, true);
      const live = all.filter((row) => !row.deleted);
      const row = version === 'latest' ? live.at(-1) : all.find((candidate) => candidate.version === version);
      if (!row) throw new RegistryError('VERSION_NOT_FOUND', `Version ${version} not found.`);
      if (!permanent) {
        if (row.deleted)
          throw new RegistryError(
            'VERSION_SOFT_DELETED',
            `Version ${row.version} of subject '${subject}' was soft deleted. Set permanent=true to delete permanently`,
          );
        await db.query(
          'UPDATE registry_subject_version SET deleted = true WHERE subject = $1 AND version = $2',
          [subject, row.version],
        );
        if (live.length === 1) await db.query('DELETE FROM registry_config WHERE subject = $1', [subject]);
      } else {
        if (!row.deleted)
          throw new RegistryError(
            'VERSION_NOT_SOFT_DELETED',
            `Version ${row.version} of subject '${subject}' was not deleted first before being permanently deleted`,
          );
        await db.query('DELETE FROM registry_subject_version WHERE subject = $1 AND version = $2', [
          subject,
          row.version,
        ]);
      }
      return row.version;
    });
  }

  /**
   * Confluent's `POST /compatibility/subjects/{s}/versions/{v}`: is `schemaText` compatible, at the subject's
   * level, with that one live version (`latest`: the latest live one, none at all counting as compatible)?
   * A missing numeric version is a 40402 before the schema is parsed. Returns the incompatibility messages.
   */
  async testCompatibility(
    subject: string,
    version: number | 'latest',
    schemaText: string,
  ): Promise<string[]> {
    const rows = await versionsOf(this.pool, subject, false);
    const against = version === 'latest' ? rows.at(-1) : rows.find((row) => row.version === version);
    if (!against && version !== 'latest')
      throw new RegistryError('VERSION_NOT_FOUND', `Version ${version} not found.`);
    const json = parseAvroSchema(schemaText);
    const level = await this.compatibilityFor(subject);
    const problems = against
      ? checkCompatibility(level, json, [JSON.parse(against.schema_text) as unknown])
      : [];
    return problems.length > 0 ? describeIncompatibilities(problems, level) : [];
  }
}

/** Confluent's incompatibility messages: one `{errorType:…}` entry per problem, then the level applied. */
export function describeIncompatibilities(problems: Incompatibility[], level: CompatibilityLevel): string[] {
  return [
    ...problems.map(
      (problem) =>
        `{errorType:'${problem.type}', description:'${problem.message}', location:'${problem.location}'}`,
    ),
    `{compatibility: '${level}'}`,
  ];
}

function incompatible(
  subject: string,
  problems: Incompatibility[],
  level: CompatibilityLevel,
): RegistryError {
  return new RegistryError(
    'INCOMPATIBLE_SCHEMA',
    `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: [${describeIncompatibilities(problems, level).join(', ')}]`,
  );
}
