import { randomUUID } from 'node:crypto';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { inTransaction, quoteIdent, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { SinkTable, SinkTableColumn } from '../../schemas/postgres/table.ts';

/** A column of an existing table, its type spelled as PostgreSQL spells it (`timestamp with time zone`). */
export interface StoredColumn {
  name: string;
  type: string;
}

/** A difference the sink will not resolve by itself: it needs a migration a person writes and runs. */
export interface SchemaConflict {
  column: string;
  /** The type in the table; null when the table lacks the column. */
  tableType: string | null;
  /** The type the dataset asks for; null when the dataset no longer has the column. */
  datasetType: string | null;
  /** The SQL (or step) that resolves it. */
  migration: string;
}

export interface EvolutionPlan {
  /** Columns the table lacks and can gain by `ADD COLUMN` (nullable, or with a default). */
  add: SinkTableColumn[];
  conflicts: SchemaConflict[];
}

/** What {@link prepareSinkTable} did. */
export interface PreparedTable {
  /** The table did not exist and was created. */
  created: boolean;
  /** Columns added to an existing table. */
  added: { column: string; type: string }[];
  /**
   * Identifies this copy of the data: new when the table is created, emptied (TRUNCATE) or replaced. The
   * sink scopes Redis dedup to it, so a rebuild into an empty table never skips a remembered event id.
   */
  instanceId: string;
}

/** Our DDL spellings that PostgreSQL reports under another name. */
const CANONICAL: Record<string, string> = {
  timestamptz: 'timestamp with time zone',
  timestamp: 'timestamp without time zone',
  int: 'integer',
  int4: 'integer',
  int8: 'bigint',
  bool: 'boolean',
};

/** A DDL type as `information_schema.columns` would report it, for comparison. */
export function canonicalType(sqlType: string): string {
  const type = sqlType
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/\s*,\s*/g, ',');
  return CANONICAL[type] ?? type;
}

interface InformationSchemaColumn {
  column_name: string;
  data_type: string;
  udt_name: string;
  numeric_precision: number | null;
  numeric_scale: number | null;
  character_maximum_length: number | null;
}

function storedType(row: InformationSchemaColumn): string {
  switch (row.data_type) {
    case 'numeric':
      return row.numeric_precision === null
        ? 'numeric'
        : `numeric(${row.numeric_precision},${row.numeric_scale ?? 0})`;
    case 'character varying':
    case 'character':
      return row.character_maximum_length === null
        ? row.data_type
        : `${row.data_type}(${row.character_maximum_length})`;
    case 'ARRAY':
      return `${row.udt_name.replace(/^_/, '')}[]`;
    case 'USER-DEFINED':
      return row.udt_name;
    default:
      return row.data_type;
  }
}

/** The columns of `table` in the current schema, in table order; empty when there is no such table. */
export async function storedColumns(db: Pick<PoolClient, 'query'>, table: string): Promise<StoredColumn[]> {
  const { rows } = await db.query<InformationSchemaColumn>(
    `SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale, character_maximum_length
       FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1
      ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((row) => ({ name: row.column_name, type: storedType(row) }));
}

/**
 * Compares an existing table with the dataset: a column the table lacks is added (every data column is
 * nullable; meta columns added later carry a default); a column whose type differs, or that the dataset no
 * longer has, is a conflict — the data in it is the agency's, and only an explicit migration may change it.
 */
export function planEvolution(
  table: SinkTable,
  stored: StoredColumn[],
  qualifiedName: string,
): EvolutionPlan {
  const wanted = table.tableColumns();
  const have = new Map(stored.map((column) => [column.name, column]));
  const add: SinkTableColumn[] = [];
  const conflicts: SchemaConflict[] = [];
  for (const want of wanted) {
    const existing = have.get(want.name);
    if (!existing) {
      if (want.addable) add.push(want);
      else {
        conflicts.push({
          column: want.name,
          tableType: null,
          datasetType: `${want.sqlType} ${want.constraints}`.trimEnd(),
          migration:
            want.role === 'key'
              ? `the identification key changed: drop or rename ${qualifiedName}, then replay the topic from offset 0 into a new table`
              : `this is not a table of this sink version: drop or rename ${qualifiedName}, then replay the topic from offset 0`,
        });
      }
    } else if (canonicalType(existing.type) !== canonicalType(want.sqlType)) {
      const name = sqlIdent(want.name);
      conflicts.push({
        column: want.name,
        tableType: existing.type,
        datasetType: canonicalType(want.sqlType),
        migration: `ALTER TABLE ${qualifiedName} ALTER COLUMN ${name} TYPE ${want.sqlType} USING ${name}::${want.sqlType}`,
      });
    }
  }
  const known = new Set(wanted.map((want) => want.name));
  for (const existing of stored) {
    if (known.has(existing.name)) continue;
    conflicts.push({
      column: existing.name,
      tableType: existing.type,
      datasetType: null,
      migration: `ALTER TABLE ${qualifiedName} DROP COLUMN ${sqlIdent(existing.name)} (archive its data first if it must be kept)`,
    });
  }
  return { add, conflicts };
}

/** An identifier quoted for SQL shown to a person; unlike `quoteIdent`, any existing name is accepted. */
function sqlIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The refusal for a plan with conflicts: names the table, each column, both types and the migration. */
export function schemaConflictError(
  table: SinkTable,
  qualifiedName: string,
  conflicts: SchemaConflict[],
): LtError {
  const lines = conflicts.map((conflict) => {
    const what =
      conflict.tableType === null
        ? `missing from the table, ${conflict.datasetType} in the dataset`
        : conflict.datasetType === null
          ? `${conflict.tableType} in the table, no longer in the dataset`
          : `${conflict.tableType} in the table, ${conflict.datasetType} in the dataset`;
    return `column "${conflict.column}": ${what}; migrate with: ${conflict.migration}`;
  });
  return new LtError(
    'LT_SINK_SCHEMA_CONFLICT',
    `sink table ${qualifiedName} does not match dataset ${table.dataset.id} — ${lines.join(' | ')}`,
    {
      details: { table: qualifiedName, dataset: table.dataset.id, conflicts },
      hint:
        'the sink adds missing columns by itself but never changes a column’s type or drops one: write the ' +
        'migration above, run it, then start the sink again (or rebuild: drop the table and replay the topic from offset 0)',
    },
  );
}

/** Serializes sink DDL within one schema: concurrent CREATE … IF NOT EXISTS can still collide in pg_type. */
async function lockSchemaDdl(client: PoolClient): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_sink_ddl'))`);
}

async function ensureInstanceTable(client: PoolClient): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS lt_sink_instance (
  table_name  text PRIMARY KEY,
  instance_id uuid NOT NULL,
  filenode    oid NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
)`);
}

/**
 * The table's instance id: kept while the table's storage (its relfilenode, which TRUNCATE, a re-create
 * and a restore all replace) is the same; a fresh one otherwise.
 */
async function instanceOf(client: PoolClient, table: SinkTable, rotate = false): Promise<string> {
  const { rows } = await client.query<{
    instance_id: string | null;
    filenode: string | null;
    current: string;
  }>(
    `SELECT i.instance_id::text AS instance_id, i.filenode::text AS filenode,
            pg_relation_filenode(to_regclass($2))::text AS current
       FROM (SELECT 1) one LEFT JOIN lt_sink_instance i ON i.table_name = $1`,
    [table.name, quoteIdent(table.name)],
  );
  const row = rows[0];
  if (row && row.instance_id !== null && row.filenode === row.current && !rotate) return row.instance_id;
  const instanceId = randomUUID();
  await client.query(
    `INSERT INTO lt_sink_instance (table_name, instance_id, filenode)
     VALUES ($1, $2, pg_relation_filenode(to_regclass($3)))
     ON CONFLICT (table_name) DO UPDATE
       SET instance_id = EXCLUDED.instance_id, filenode = EXCLUDED.filenode, updated_at = now()`,
    [table.name, instanceId, quoteIdent(table.name)],
  );
  return instanceId;
}

/**
 * Creates the table, or evolves an existing one (see {@link planEvolution}); refuses with
 * LT_SINK_SCHEMA_CONFLICT, changing nothing, when a column conflicts. One transaction, serialized with
 * other sinks of the same schema.
 */
export async function prepareSinkTable(pool: Pool, table: SinkTable, log: Logger): Promise<PreparedTable> {
  return inTransaction(pool, async (client) => {
    await lockSchemaDdl(client);
    const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
    const qualifiedName = `${sqlIdent(rows[0]!.schema)}.${sqlIdent(table.name)}`;
    const stored = await storedColumns(client, table.name);
    let created = false;
    const added: PreparedTable['added'] = [];
    if (stored.length === 0) {
      await client.query(table.createSql());
      created = true;
    } else {
      const plan = planEvolution(table, stored, qualifiedName);
      if (plan.conflicts.length > 0) throw schemaConflictError(table, qualifiedName, plan.conflicts);
      for (const column of plan.add) {
        await client.query(table.addColumnSql(column));
        added.push({ column: column.name, type: column.sqlType });
        log.info(
          { table: qualifiedName, column: column.name, type: column.sqlType },
          'sink table column added',
        );
      }
    }
    await ensureInstanceTable(client);
    return { created, added, instanceId: await instanceOf(client, table) };
  });
}

/** Empties the table and gives it a new instance id, in one transaction; returns the new id. */
export async function purgeSinkTable(pool: Pool, table: SinkTable): Promise<string> {
  return inTransaction(pool, async (client) => {
    await client.query(table.truncateSql());
    await ensureInstanceTable(client);
    return instanceOf(client, table, true);
  });
}
