import { LtError } from '../../infra/errors.ts';
import { principals } from '../../infra/security/principals.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';

/** The decisions on an agreement, each taken by an authenticated principal and audited under its name. */
export type AgreementStep = 'request' | 'approve' | 'refuse' | 'suspend' | 'resume' | 'revoke' | 'update';

/**
 * Who may take `step` on an agreement of `subscriber` for `dataset` (docs/security.md, *HTTP*): the subscribing
 * agency requests; only the dataset's owner agency approves or refuses, and never its own request; a platform
 * operator suspends and resumes; the owner or an operator revokes or changes it. Throws LT_FORBIDDEN naming who
 * may, otherwise returns.
 */
export function checkAgreementStep(
  principal: string,
  step: AgreementStep,
  agreement: { subscriber: string; dataset: string },
  dictionary: Dictionary,
): void {
  const owner = dictionary.datasets.get(agreement.dataset)?.owner;
  const subscriber = principals.agency(agreement.subscriber);
  const ownerPrincipal = owner === undefined ? undefined : principals.agency(owner);
  const refuse = (who: string): never => {
    throw new LtError('LT_FORBIDDEN', `${principal} may not ${step} this agreement: ${who}`, {
      details: { principal, step, subscriber: agreement.subscriber, dataset: agreement.dataset },
    });
  };
  switch (step) {
    case 'request':
      if (principal !== subscriber) refuse(`only the subscribing agency (${subscriber}) requests it`);
      return;
    case 'approve':
    case 'refuse':
      if (principal !== ownerPrincipal)
        refuse(
          `only the owner of ${agreement.dataset} (${ownerPrincipal ?? 'none in the dictionary'}) decides`,
        );
      if (owner === agreement.subscriber) refuse('nobody approves or refuses their own request');
      return;
    case 'suspend':
    case 'resume':
      if (principal !== principals.operator) refuse(`only a platform operator (${principals.operator}) does`);
      return;
    case 'revoke':
    case 'update':
      if (principal !== ownerPrincipal && principal !== principals.operator)
        refuse(
          `only the owner of ${agreement.dataset} (${ownerPrincipal ?? '—'}) or ${principals.operator} does`,
        );
      return;
  }
}
