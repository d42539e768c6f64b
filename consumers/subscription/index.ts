export {
  agreedDataset,
  startSubscription,
  type RunningSubscription,
  type SubscriptionOptions,
  type SubscriptionSpec,
} from './subscription.ts';
export { SUBSCRIPTION_BACKOFF_MS, SupervisedSubscription, type SubscriptionState } from './supervisor.ts';
