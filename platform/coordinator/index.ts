export {
  Coordinator,
  type CoordinatorOptions,
  type CoordinatorStats,
  type DegradedAgreement,
} from './coordinator.ts';
export { reshareAgreement } from './reshare.ts';
