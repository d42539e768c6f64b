export { Coordinator, type CoordinatorOptions, type CoordinatorStats } from './coordinator.ts';
