/**
 * This machine's ceilings for the end-to-end benchmark's figures, measured on the same data in the same run:
 * - the raw read rate of a topic with `kcat` (librdkafka, C: fetch, decompress, nothing else), and
 * - the raw `COPY` rate of a table's rows into PostgreSQL (psql's `\copy` into a copy of the table, its
 *   indexes included: the least work that lands the same rows durably).
 * A sink's figure divided by these says how much of what the machine can do it reaches. Prints nothing itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaSecurity } from '../infra/kafka/client.ts';
import { quoteIdent, type Pool } from '../infra/postgres/pool.ts';

export interface Ceiling {
  rows: number;
  seconds: number;
  perSecond: number;
}

/**
 * Why kcat cannot measure the raw read rate here, or null when it can. Debian 12's kcat is built on librdkafka
 * 2.0.2, whose SASL exchange Kafka 4 brokers refuse ("invalid credentials"; fixed in librdkafka 2.6.1, see
 * edenhill/kcat#462): with the broker's security on, the raw read is measured in the security-off run.
 */
export function kcatUnavailable(security: KafkaSecurity | undefined): string | null {
  if (spawnSync('kcat', ['-V'], { encoding: 'utf8' }).status !== 0)
    return 'kcat is not installed (apt-get install -y kcat)';
  if (security)
    return "Debian's kcat (librdkafka 2.0.2) cannot SCRAM-authenticate to Kafka 4: measured with security off";
  return null;
}

function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve((performance.now() - started) / 1000)
        : reject(new Error(`${command} exited ${code}: ${stderr.trim()}`)),
    );
  });
}

/**
 * Reads `messages` records of `topic` from the beginning with kcat and times it. The credentials go in a
 * config file of mode 0600 (never on the command line), removed afterwards.
 */
export async function kcatReadRate(
  brokers: string[],
  security: KafkaSecurity | undefined,
  topic: string,
  messages: number,
): Promise<Ceiling> {
  const dir = mkdtempSync(join(tmpdir(), 'lt-bench-kcat-'));
  try {
    const config = join(dir, 'kcat.conf');
    const lines = [`bootstrap.servers=${brokers.join(',')}`];
    if (security) {
      writeFileSync(join(dir, 'ca.pem'), security.ca, { mode: 0o600 });
      lines.push(
        'security.protocol=SASL_SSL',
        'sasl.mechanisms=SCRAM-SHA-512',
        `sasl.username=${security.username}`,
        `sasl.password=${security.password}`,
        `ssl.ca.location=${join(dir, 'ca.pem')}`,
      );
    }
    writeFileSync(config, `${lines.join('\n')}\n`, { mode: 0o600 });
    const seconds = await timed('kcat', [
      '-F',
      config,
      '-C',
      '-q',
      '-e',
      '-o',
      'beginning',
      '-c',
      String(messages),
      '-t',
      topic,
      '-f',
      '%o\n',
    ]);
    return { rows: messages, seconds, perSecond: Math.round(messages / seconds) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Exports `schema.table` with COPY TO, then times psql loading it with `\copy` into a new table made LIKE it
 * (indexes and constraints included), dropped afterwards.
 */
export async function copyRate(
  pool: Pool,
  databaseUrl: string,
  schema: string,
  table: string,
): Promise<Ceiling> {
  const dir = mkdtempSync(join(tmpdir(), 'lt-bench-copy-'));
  const source = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const target = `${quoteIdent(schema)}.${quoteIdent(`${table}_copy_ceiling`)}`;
  // psql's connection from the environment (libpq's PG* variables), so no password is in its arguments
  const url = new URL(databaseUrl);
  const env = {
    ...process.env,
    PGHOST: decodeURIComponent(url.hostname),
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username || 'postgres'),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: decodeURIComponent(url.pathname.slice(1) || 'postgres'),
  };
  const psql = (command: string): Promise<number> =>
    timed('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-c', command], env);
  try {
    const file = join(dir, 'rows.copy');
    await psql(`\\copy ${source} TO '${file}'`);
    await pool.query(`DROP TABLE IF EXISTS ${target}; CREATE TABLE ${target} (LIKE ${source} INCLUDING ALL)`);
    const seconds = await psql(`\\copy ${target} FROM '${file}'`);
    const rows = Number(
      (await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${target}`)).rows[0]?.n ?? 0,
    );
    return { rows, seconds, perSecond: Math.round(rows / seconds) };
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${target}`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
