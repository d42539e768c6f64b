import type { Logger } from '../../infra/logging/logger.ts';
import type { Pool, PoolClient } from '../../infra/postgres/pool.ts';

/** The lock of one platform schema's once-only duties: the same key on every host, per schema. */
const DUTIES_LOCK = `hashtext(current_schema() || '.lt_coordinator_duties')`;

/**
 * Which one of several coordinators sharing a platform schema does the duties that must happen once, not once per
 * process: telling a subscriber its agreement ended, checking subscribers' positions (and re-deriving an agreement
 * whose subscriber lost records — two coordinators would each raise its revision), retiring an earlier revision,
 * recording the degraded agreements. The holder keeps a session advisory lock on a connection of its own; when it
 * dies, its session ends and the next coordinator to ask takes the lock. Deriving the streams is not a duty:
 * every coordinator of the group derives the partitions Kafka gives it.
 */
export class DutiesLease {
  private session: PoolClient | null = null;
  private readonly pool: Pool;
  private readonly log: Logger;

  constructor(pool: Pool, log: Logger) {
    this.pool = pool;
    this.log = log;
  }

  /** Whether this coordinator holds the duties now: keeps the lock it has, or tries to take it. Never throws. */
  async held(): Promise<boolean> {
    if (this.session) {
      try {
        await this.session.query('SELECT 1');
        return true;
      } catch (error) {
        this.drop(error);
      }
    }
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      this.log.warn({ err: error }, 'could not ask for the coordinator duties');
      return false;
    }
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock(${DUTIES_LOCK}) AS locked`,
      );
      if (!rows[0]?.locked) {
        client.release();
        return false;
      }
      // a checked-out client's error (its server gone) would otherwise be an unhandled 'error' event
      client.on('error', (error) => this.drop(error));
      this.session = client;
      this.log.info('this coordinator does the once-only duties (end notices, positions, retirements)');
      return true;
    } catch (error) {
      client.release(true);
      this.log.warn({ err: error }, 'could not ask for the coordinator duties');
      return false;
    }
  }

  /** Gives the duties up (at stop): another coordinator takes them at its next refresh. */
  async release(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (!session) return;
    await session.query(`SELECT pg_advisory_unlock(${DUTIES_LOCK})`).catch(() => undefined);
    session.release();
  }

  private drop(error: unknown): void {
    const session = this.session;
    if (!session) return;
    this.session = null;
    session.release(true);
    this.log.warn({ err: error }, 'lost the session that held the coordinator duties');
  }
}
