import { readEnv } from '../infra/config/options.ts';
import type { Logger } from '../infra/logging/logger.ts';
import {
  opsSettings,
  startOpsServer,
  type OpsOptions,
  type OpsService,
  type PipelineMetrics,
  type ReadinessCheck,
  type RunningOpsServer,
} from '../infra/observability/index.ts';

/** The ops flags every long-running command takes. */
export interface OpsFlags {
  /** `--ops-port`: default the service's own (docs/observability.md). */
  opsPort?: number;
  /** `--ops-host`: default 127.0.0.1. */
  opsHost?: string;
}

/**
 * Starts the ops port of a long-running command (/health, /ready, /metrics): its options (an Agent Node's `ops:`,
 * else the defaults) under the command's flags; TLS signed by the platform CA unless security is off
 * (LIENTHONG_INSECURE=1, or `ops.insecure`); `/metrics` behind LIENTHONG_METRICS_TOKEN. Null when disabled.
 */
export async function serveOps(
  service: OpsService,
  parts: { metrics: PipelineMetrics; checks: ReadinessCheck[]; log: Logger },
  flags: OpsFlags,
  options: OpsOptions = {},
): Promise<RunningOpsServer | null> {
  const env = readEnv();
  const settings = opsSettings(
    service,
    {
      ...options,
      ...(flags.opsPort === undefined ? {} : { port: flags.opsPort }),
      ...(flags.opsHost === undefined ? {} : { host: flags.opsHost }),
      ...(env.LIENTHONG_INSECURE ? { insecure: true } : {}),
    },
    env.LIENTHONG_METRICS_TOKEN,
  );
  if (!settings.enabled) return null;
  const ops = await startOpsServer({ service, ...parts, settings, home: env.LIENTHONG_HOME });
  console.log(`  ops: ${ops.url}/health /ready /metrics (docs/observability.md)`);
  return ops;
}
