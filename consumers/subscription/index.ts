export {
  agreedDataset,
  startSubscription,
  type RunningSubscription,
  type SubscriptionOptions,
  type SubscriptionSpec,
} from './subscription.ts';
