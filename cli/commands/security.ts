import { readEnv, type Env } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { aclKey, type AclChange } from '../../infra/kafka/acl.ts';
import { createKafka, type KafkaSecurity } from '../../infra/kafka/client.ts';
import { deleteScramPassword, setScramPassword, type ScramTarget } from '../../infra/kafka/scram.ts';
import { createLogger, type Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { ensurePlatformCa } from '../../infra/security/pki.ts';
import {
  credentialFile,
  newPassword,
  principals,
  PLATFORM_PRINCIPALS,
  readCredential,
  removeCredential,
  writeCredential,
} from '../../infra/security/principals.ts';
import { keepAclsInSync, syncAcls } from '../../platform/access/plan.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';
import { untilStopped } from '../until-stopped.ts';

/** The secure cluster and the super user's credential under LIENTHONG_HOME, or a refusal saying what to do. */
function adminTarget(env: Env, log: Logger, what: string): ScramTarget & { brokers: string[] } {
  if (!env.KAFKA_BROKERS)
    throw new LtError('LT_CONFIG_INVALID', `${what} needs KAFKA_BROKERS (the secure cluster)`, {
      hint: 'start one (`lienthong broker start`) and export the KAFKA_BROKERS it prints',
    });
  const admin = readCredential(env.LIENTHONG_HOME, principals.admin);
  if (!admin)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${what} runs as ${principals.admin}, whose credential is not in ${credentialFile(env.LIENTHONG_HOME, principals.admin)}`,
      { hint: 'run it on the operator host whose LIENTHONG_HOME started the secure cluster' },
    );
  const security: KafkaSecurity = {
    ca: ensurePlatformCa(env.LIENTHONG_HOME).certPem,
    username: admin.principal,
    password: admin.password,
  };
  return { home: env.LIENTHONG_HOME, brokers: env.KAFKA_BROKERS, admin: security, log };
}

/** The principal an option names: `--agency X` (its Agent Node) or `--principal lt-…` (a platform service). */
function principalOf(options: { agency?: string; principal?: string }): string {
  if ((options.agency === undefined) === (options.principal === undefined))
    throw new LtError('LT_USAGE', 'name exactly one of --agency <code> or --principal <name>', {
      hint: `platform principals: ${PLATFORM_PRINCIPALS.filter((name) => name !== principals.admin).join(', ')}`,
    });
  if (options.agency !== undefined) return principals.agency(options.agency);
  const principal = options.principal!;
  if (!(PLATFORM_PRINCIPALS as readonly string[]).includes(principal) || principal === principals.admin)
    throw new LtError('LT_USAGE', `"${principal}" is not a platform principal one may issue`, {
      hint: `one of ${PLATFORM_PRINCIPALS.filter((name) => name !== principals.admin).join(', ')}`,
    });
  return principal;
}

/**
 * `lienthong credentials issue|rotate|revoke`: a principal's SCRAM-SHA-512 password on the cluster and in
 * `<LIENTHONG_HOME>/security/credentials/<principal>.json` (mode 0600), which the principal's host receives by
 * whatever secure channel the agencies agreed; the password is never printed. `issue` refuses a principal that
 * has one (use rotate); `rotate` replaces it (the old one stops working for new sessions at once, for open ones
 * within a minute); `revoke` removes it.
 */
export function runCredentials(
  action: 'issue' | 'rotate' | 'revoke',
  options: { agency?: string; principal?: string },
): void {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const principal = principalOf(options);
  const target = adminTarget(env, log, `credentials ${action}`);
  const known = readCredential(env.LIENTHONG_HOME, principal);
  if (action === 'issue' && known)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${principal} already has a credential (issued ${known.issuedAt})`,
      {
        hint: `to replace it: lienthong credentials rotate ${options.agency ? `--agency ${options.agency}` : `--principal ${principal}`}`,
      },
    );
  if (action === 'rotate' && !known)
    throw new LtError('LT_CONFIG_INVALID', `${principal} has no credential to rotate`, {
      hint: 'issue one first: lienthong credentials issue …',
    });
  if (action === 'revoke') {
    deleteScramPassword(target, principal);
    removeCredential(env.LIENTHONG_HOME, principal);
    console.log(`${principal}: revoked — the broker refuses it now (open sessions within a minute)`);
    return;
  }
  const password = newPassword();
  setScramPassword(target, principal, password);
  const file = writeCredential(env.LIENTHONG_HOME, {
    principal,
    password,
    issuedAt: new Date().toISOString(),
  });
  console.log(
    `${principal}: ${action === 'issue' ? 'issued' : 'rotated'}; the credential is in ${file} (owner-only). ` +
      'Hand it to that principal’s host over a secure channel; it is never printed.',
  );
}

function printChanges(changes: AclChange[]): void {
  printTable(
    ['change', 'principal', 'operation', 'resource'],
    changes.map(({ action, acl }) => [action, acl.principal, acl.operation, aclKey(acl).split(' ')[2]!]),
  );
}

/**
 * `lienthong acl sync [--dry-run] [--json] [--watch <seconds>]`: the broker's ACLs made exactly what the dictionary
 * and the agreements grant (platform/access/plan.ts); prints each grant and revocation (`--json`:
 * `{ dryRun, changes: [{ action, acl }], foreign }`). `--watch` keeps doing it until Ctrl-C, so a suspended,
 * revoked or expired agreement loses its read within that many seconds.
 */
export async function runAclSync(options: {
  dryRun: boolean;
  schema: string;
  watch?: number;
  json: boolean;
}): Promise<void> {
  if (options.watch !== undefined && (options.dryRun || options.json))
    throw new LtError(
      'LT_USAGE',
      '--watch applies changes until Ctrl-C; it takes neither --dry-run nor --json',
      {
        hint: 'drop --watch for one dry run or one JSON report',
      },
    );
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const target = adminTarget(env, log, 'acl sync');
  const dictionary = loadDictionary();
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
  try {
    await migrate(pool, 'platform');
    const store = new AgreementStore(pool, dictionary);
    const kafka = createKafka({
      brokers: target.brokers,
      clientId: 'lienthong-acl',
      log,
      security: target.admin,
    });
    if (options.watch !== undefined) {
      const keeper = keepAclsInSync(kafka, async () => ({ dictionary, agreements: await store.list() }), {
        intervalMs: options.watch * 1000,
        log,
        onChanges: (changes) => {
          console.log(`${new Date().toISOString()}: ${changes.length} change(s) made`);
          printChanges(changes);
        },
      });
      console.log(`keeping the broker's ACLs in sync every ${options.watch} s. Ctrl-C stops it.`);
      await untilStopped([]);
      await keeper.stop();
      return;
    }
    const agreements = await store.list();
    const { changes, foreign } = await syncAcls(
      kafka,
      { dictionary, agreements },
      { dryRun: options.dryRun },
    );
    if (options.json) {
      console.log(JSON.stringify({ dryRun: options.dryRun, changes, foreign }, null, 2));
      return;
    }
    if (changes.length === 0)
      console.log('the broker’s ACLs already match the dictionary and the agreements');
    else {
      printChanges(changes);
      console.log(
        options.dryRun
          ? `\n${changes.length} change(s) would be made (dry run: nothing changed); run without --dry-run to apply`
          : `\n${changes.length} change(s) made`,
      );
    }
    for (const rule of foreign) console.log(`left alone (not a rule lienthong writes): ${rule}`);
  } finally {
    await pool.end();
  }
}
