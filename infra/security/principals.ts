import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Env } from '../config/options.ts';
import { LtError } from '../errors.ts';
import type { KafkaSecurity } from '../kafka/client.ts';
import type { Logger } from '../logging/logger.ts';
import { securityDir } from './pki.ts';

/**
 * Who may connect: one principal per agency (its Agent Node) and one per platform service. On the broker a
 * principal is a SCRAM-SHA-512 user (`User:<name>` in ACLs); on HTTP the same name and password. The only module
 * that builds these names.
 */
export const principals = {
  /** The broker's super user: inter-broker traffic, `acl sync`, `credentials`. Operators' tools only. */
  admin: 'lt-admin',
  coordinator: 'lt-coordinator',
  ngdb: 'lt-ngdb',
  /** The registry and the dictionary publisher (it creates source topics and registers schemas). */
  registry: 'lt-registry',
  /** Platform operators: suspend agreements, replay, read every dead-letter topic. */
  operator: 'lt-operator',
  agency: (code: string): string => {
    if (!/^[A-Z][A-Z0-9-]*$/.test(code)) throw new Error(`invalid agency code "${code}" for a principal`);
    return `agency.${code}`;
  },
} as const;

/** The platform's own principals (not agencies). */
export const PLATFORM_PRINCIPALS = [
  principals.admin,
  principals.coordinator,
  principals.ngdb,
  principals.registry,
  principals.operator,
] as const;

const PRINCIPAL = /^(lt-[a-z]+|agency\.[A-Z][A-Z0-9-]*)$/;

const CredentialSchema = z.object({
  principal: z.string().regex(PRINCIPAL),
  password: z.string().min(32).max(200),
  issuedAt: z.string(),
});

/** A principal's secret, kept in `<home>/security/credentials/<principal>.json` (mode 0600). */
export type Credential = z.infer<typeof CredentialSchema>;

export function credentialFile(home: string, principal: string): string {
  if (!PRINCIPAL.test(principal)) throw new Error(`invalid principal "${principal}"`);
  return join(securityDir(home), 'credentials', `${principal}.json`);
}

/** A new random password: 32 bytes, base64url. */
export function newPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** The stored credential of `principal`, or null when none was issued. */
export function readCredential(home: string, principal: string): Credential | null {
  const file = credentialFile(home, principal);
  if (!existsSync(file)) return null;
  const parsed = CredentialSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success)
    throw new LtError('LT_CONFIG_INVALID', `${file} is not a lienthong credential`, {
      hint: `issue it again: lienthong credentials rotate (${principal})`,
    });
  return parsed.data;
}

export function writeCredential(home: string, credential: Credential): string {
  const file = credentialFile(home, credential.principal);
  mkdirSync(join(securityDir(home), 'credentials'), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(credential, null, 2)}\n`, { mode: 0o600 });
  return file;
}

export function removeCredential(home: string, principal: string): void {
  rmSync(credentialFile(home, principal), { force: true });
}

/** The stored credential of `principal`, made (a new password, not yet known to any broker) if there is none. */
export function ensureCredential(home: string, principal: string): Credential {
  const known = readCredential(home, principal);
  if (known) return known;
  const credential = { principal, password: newPassword(), issuedAt: new Date().toISOString() };
  writeCredential(home, credential);
  return credential;
}

/**
 * How this process authenticates to the platform's HTTP services (the registry, the catalog): the same principal
 * and password as {@link kafkaSecurityFor}, and the platform CA their TLS is signed by; nothing with
 * LIENTHONG_INSECURE=1. A missing credential is refused with what to do.
 */
export function httpIdentityFor(
  env: Env,
  principal: string,
  log: Logger,
): { auth?: { username: string; password: string }; ca?: string } {
  const security = kafkaSecurityFor(env, principal, log);
  return security
    ? { auth: { username: security.username, password: security.password }, ca: security.ca }
    : {};
}

/** The CA certificate a client trusts, `<home>/security/ca/ca.crt`. */
export function caFile(home: string): string {
  return join(securityDir(home), 'ca', 'ca.crt');
}

const insecureSaid = new Set<string>();

/**
 * How this process connects to Kafka: as `KAFKA_PRINCIPAL`, else `principal` (the command's own), with the
 * credential and the CA under LIENTHONG_HOME — or, only when LIENTHONG_INSECURE=1 says so, in plaintext (logged
 * as insecure). A missing credential is refused with what to do.
 */
export function kafkaSecurityFor(env: Env, principal: string, log: Logger): KafkaSecurity | undefined {
  if (env.LIENTHONG_INSECURE) {
    if (!insecureSaid.has(principal)) {
      insecureSaid.add(principal);
      log.warn({ principal }, 'INSECURE: Kafka in plaintext without credentials (LIENTHONG_INSECURE=1)');
    }
    return undefined;
  }
  const name = env.KAFKA_PRINCIPAL ?? principal;
  const credential = readCredential(env.LIENTHONG_HOME, name);
  const ca = caFile(env.LIENTHONG_HOME);
  if (!credential || !existsSync(ca))
    throw new LtError(
      'LT_CONFIG_INVALID',
      `no credential for ${name}: ${credential ? ca : credentialFile(env.LIENTHONG_HOME, name)} is missing`,
      {
        hint:
          `on the operator host: lienthong credentials issue ${name.startsWith('agency.') ? `--agency ${name.slice('agency.'.length)}` : `--principal ${name}`}, ` +
          `then copy that file and ${ca} here; for a plaintext developer broker only: LIENTHONG_INSECURE=1`,
      },
    );
  return { ca: readFileSync(ca, 'utf8'), username: credential.principal, password: credential.password };
}
