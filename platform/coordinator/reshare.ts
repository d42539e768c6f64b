import { LtError } from '../../infra/errors.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Agreement } from '../agreements/model.ts';
import type { AgreementStore } from '../agreements/store.ts';
import { recordOperatorAction } from '../audit/operator-audit.ts';

/**
 * `lienthong reshare --agreement <id>`: has the coordinator re-derive one agreement's stream from the start of
 * its source topic, through the mechanism it already has for a subscriber that lost its position — a resync
 * (AgreementStore.resync, `agreement_event` action `resync`): a new revision with the same fields and filter,
 * which the running coordinator picks up at its next refresh, backfills from offset 0 and whose retirement of the
 * old revision deletes every key it no longer shares. Audited in `operator_audit` (`reshare`), refused or done.
 */
export async function reshareAgreement(
  store: Pick<AgreementStore, 'resync'>,
  pool: Pool,
  request: { agreementId: string; reason: string; principal: string },
): Promise<Agreement> {
  const audit = (outcome: 'done' | 'refused', detail: Record<string, unknown>) =>
    recordOperatorAction(pool, {
      principal: request.principal,
      action: 'reshare',
      target: request.agreementId,
      outcome,
      detail: { reason: request.reason, ...detail },
    });
  try {
    const agreement = await store.resync(request.agreementId, request.reason, request.principal);
    await audit('done', { revision: agreement.revision });
    return agreement;
  } catch (error) {
    if (error instanceof LtError && !error.retriable)
      await audit('refused', { code: error.code, message: error.message });
    throw error;
  }
}
