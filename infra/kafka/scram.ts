import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { KafkaSecurity } from './client.ts';
import { ensureKafkaJars } from './local-broker.ts';

/** PBKDF2 iterations of a stored SCRAM-SHA-512 credential (Kafka's minimum is 4096). */
const SCRAM_ITERATIONS = 8192;

export interface ScramTarget {
  /** LIENTHONG_HOME: where the Kafka jars are (their ConfigCommand does the work). */
  home: string;
  brokers: string[];
  /** The super user who may change credentials. */
  admin: KafkaSecurity;
  log: Logger;
}

/**
 * Runs Kafka's own `ConfigCommand` (kafkajs has no AlterUserScramCredentials) as the super user. Every secret
 * goes through files readable by this user only, in a directory removed afterwards: never a process argument.
 */
function configCommand(target: ScramTarget, args: string[], files: Record<string, string>): string {
  const libs = ensureKafkaJars(target.home, target.log);
  const dir = mkdtempSync(join(tmpdir(), 'lt-scram-'));
  try {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, target.admin.ca, { mode: 0o600 });
    const commandConfig = join(dir, 'admin.properties');
    writeFileSync(
      commandConfig,
      [
        'security.protocol=SASL_SSL',
        'sasl.mechanism=SCRAM-SHA-512',
        `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${target.admin.username}" password="${target.admin.password}";`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${caFile}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const paths: Record<string, string> = {};
    for (const [name, content] of Object.entries(files)) {
      paths[name] = join(dir, name);
      writeFileSync(paths[name], content, { mode: 0o600 });
    }
    const result = spawnSync(
      'java',
      [
        '-Xmx256m',
        '-cp',
        `${libs}/*`,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server',
        target.brokers.join(','),
        '--command-config',
        commandConfig,
        ...args.map((arg) => (arg.startsWith('@') ? paths[arg.slice(1)]! : arg)),
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    // the tool echoes what it could not parse: never let a password reach a log or an error
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
      .trim()
      .replace(/password=[^,\]\s"]*/g, 'password=<redacted>')
      .replace(/password="[^"]*"/g, 'password="<redacted>"');
    if (result.error || result.status !== 0)
      throw new LtError(
        'LT_KAFKA_UNREACHABLE',
        `Kafka's ConfigCommand failed: ${(result.error?.message ?? output).split('\n').slice(-3).join(' ')}`,
        { hint: 'is the broker up, and is the lt-admin credential the one the broker knows?' },
      );
    return output;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets (creates or replaces) the SCRAM-SHA-512 password of `principal` on the cluster. */
export function setScramPassword(target: ScramTarget, principal: string, password: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new Error('a SCRAM password here is base64url');
  configCommand(
    target,
    [
      '--alter',
      '--entity-type',
      'users',
      '--entity-name',
      principal,
      '--add-config-file',
      '@scram.properties',
    ],
    // in a file the value goes without the brackets the command line needs around its commas
    { 'scram.properties': `SCRAM-SHA-512=iterations=${SCRAM_ITERATIONS},password=${password}\n` },
  );
}

/** Removes the SCRAM-SHA-512 credential of `principal`: it can no longer authenticate (new sessions at once,
 * open ones at their next re-authentication). */
export function deleteScramPassword(target: ScramTarget, principal: string): void {
  configCommand(
    target,
    ['--alter', '--entity-type', 'users', '--entity-name', principal, '--delete-config', 'SCRAM-SHA-512'],
    {},
  );
}
