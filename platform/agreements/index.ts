export {
  AgreementActions,
  AgreementStatuses,
  AgreementTransitions,
  EndPolicies,
  allowedActions,
  isActive,
  isFinal,
  nextStatus,
  type Agreement,
  type AgreementAction,
  type AgreementStatus,
  type EndPolicy,
} from './model.ts';
export {
  checkFilter,
  compileFilter,
  filterFields,
  formatFilter,
  parseFilter,
  unsharedFilterFields,
  type FilterAst,
  type FilterProblem,
} from './filter.ts';
export {
  AGREEMENT_CHANNEL,
  AgreementChangesSchema,
  AgreementInputSchema,
  AgreementStore,
  SYSTEM_ACTOR,
  type AgreementChanges,
  type AgreementEvent,
  type AgreementEventAction,
  type AgreementInput,
  type AgreementProblem,
  type AgreementQuery,
  type AgreementStoreOptions,
} from './store.ts';
export { ACTOR_HEADER, registerAgreementRoutes } from './routes.ts';
