import type { PasswordCheck } from '../../infra/http/principal-auth.ts';
import { principals } from '../../infra/security/principals.ts';

/** Who may use the registry: every request authenticated; writes per subject; deletes and global config apart. */
export interface RegistryAccess {
  check: PasswordCheck;
  /** May `principal` register under `subject`, or set its compatibility (a first registration does)? */
  mayWrite(principal: string, subject: string): boolean;
  /** May `principal` delete subjects or versions, or change the global compatibility? */
  mayAdminister(principal: string): boolean;
}

/** A share topic's key or value subject: `lt.share.<agreement>-key|-value`. */
export function isShareSubject(subject: string): boolean {
  return /^lt\.share\.[a-z0-9][a-z0-9-]*-(key|value)$/.test(subject);
}

/**
 * The registry's rules, derived like the broker's ACLs (docs/security.md): the dictionary publisher (`lt-registry`)
 * and the super user alone register the dictionary's schemas, delete, and change any compatibility level; the
 * coordinator registers share topics' subjects (projections it derives from them). Publishers only look up. Any
 * authenticated principal reads.
 */
export function registryAccess(check: PasswordCheck): RegistryAccess {
  const administrators = new Set<string>([principals.registry, principals.admin]);
  return {
    check,
    mayAdminister: (principal) => administrators.has(principal),
    mayWrite: (principal, subject) =>
      administrators.has(principal) || (principal === principals.coordinator && isShareSubject(subject)),
  };
}
