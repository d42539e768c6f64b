import type { PasswordCheck } from '../../infra/http/principal-auth.ts';
import { subjects, topics } from '../../infra/kafka/topics.ts';
import { principals } from '../../infra/security/principals.ts';
import type { Dictionary } from '../model/dictionary.ts';

/** Who may use the registry: every request authenticated; writes per subject; deletes and global config apart. */
export interface RegistryAccess {
  check: PasswordCheck;
  /** May `principal` register under `subject`, or set its compatibility (a first registration does)? */
  mayWrite(principal: string, subject: string): boolean;
  /** May `principal` delete subjects or versions, or change the global compatibility? */
  mayAdminister(principal: string): boolean;
}

/**
 * The registry's rules, derived like the broker's ACLs (docs/security.md): the dictionary publisher (`lt-registry`)
 * and the super user write anything and alone delete or change the global level; the owner agency of a dataset
 * registers its source topic's subjects (its publisher registers the dictionary's schema on first use); the
 * coordinator registers share topics' subjects. Any authenticated principal reads.
 */
export function registryAccess(dictionary: Dictionary, check: PasswordCheck): RegistryAccess {
  const administrators = new Set<string>([principals.registry, principals.admin]);
  const owned = new Map<string, string>();
  for (const dataset of dictionary.datasets.values()) {
    const topic = topics.source(dataset.id);
    for (const subject of [subjects.key(topic), subjects.value(topic)])
      owned.set(subject, principals.agency(dataset.owner));
  }
  return {
    check,
    mayAdminister: (principal) => administrators.has(principal),
    mayWrite: (principal, subject) =>
      administrators.has(principal) ||
      owned.get(subject) === principal ||
      (principal === principals.coordinator && subject.startsWith('lt.share.')),
  };
}
