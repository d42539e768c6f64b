import { toLtError, type LtError } from '../../infra/errors.ts';
import {
  startSubscription,
  type RunningSubscription,
  type SubscriptionOptions,
  type SubscriptionSpec,
} from './subscription.ts';

/** What a supervised subscription is doing now. */
export type SubscriptionState =
  | { status: 'starting' }
  | { status: 'running' }
  | { status: 'retrying'; code: string; reason: string; attempts: number; nextAttemptAt: Date }
  | { status: 'stopped' };

/** Waits before starting a subscription again: 1 s, doubling, at most a minute. */
export const SUBSCRIPTION_BACKOFF_MS = { first: 1_000, max: 60_000 } as const;

/**
 * One subscription of an Agent Node, started and, while it cannot start (its share schema not registered yet,
 * a table it cannot evolve, PostgreSQL not answering), reported and tried again with backoff. The node's other
 * subscriptions, its HTTP ingest and its outbox relay go on meanwhile.
 */
export class SupervisedSubscription {
  readonly spec: SubscriptionSpec;
  private readonly options: SubscriptionOptions;
  private current: SubscriptionState = { status: 'starting' };
  private subscription: RunningSubscription | null = null;
  private stopping = false;
  private wake: () => void = () => undefined;
  private readonly loop: Promise<void>;
  /** Resolves once started: the subscription, or null when stopped first. */
  readonly started: Promise<RunningSubscription | null>;
  /** Resolves if the running sink stops reading for good (LT_CONSUMER_STOPPED); never while not started. */
  readonly failed: Promise<LtError>;

  constructor(spec: SubscriptionSpec, options: SubscriptionOptions) {
    this.spec = spec;
    this.options = options;
    let settle: (running: RunningSubscription | null) => void = () => undefined;
    this.started = new Promise((resolve) => (settle = resolve));
    this.failed = this.started.then((running) =>
      running ? running.sink.failed : new Promise<never>(() => {}),
    );
    this.loop = this.run(settle);
  }

  get state(): SubscriptionState {
    return this.current;
  }

  get running(): RunningSubscription | null {
    return this.subscription;
  }

  private async run(settle: (running: RunningSubscription | null) => void): Promise<void> {
    const log = this.options.log.child({ component: 'subscription', agreement: this.spec.agreement });
    for (let attempts = 1; !this.stopping; attempts++) {
      try {
        const running = await startSubscription(this.spec, this.options);
        if (this.stopping) {
          await running.stop();
          break;
        }
        this.subscription = running;
        this.current = { status: 'running' };
        settle(running);
        return;
      } catch (error) {
        const failure = toLtError(error);
        const wait = Math.min(
          SUBSCRIPTION_BACKOFF_MS.first * 2 ** (attempts - 1),
          SUBSCRIPTION_BACKOFF_MS.max,
        );
        this.current = {
          status: 'retrying',
          code: failure.code,
          reason: failure.message,
          attempts,
          nextAttemptAt: new Date(Date.now() + wait),
        };
        log.warn({ err: error, attempts, retryInMs: wait }, 'subscription cannot start; trying again');
        await new Promise<void>((resume) => {
          const timer = setTimeout(resume, wait);
          this.wake = () => {
            clearTimeout(timer);
            resume();
          };
        });
      }
    }
    this.current = { status: 'stopped' };
    settle(null);
  }

  /** Stops trying, or stops the running subscription. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    await this.subscription?.stop();
    this.subscription = null;
    this.current = { status: 'stopped' };
  }
}
