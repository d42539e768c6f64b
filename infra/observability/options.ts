import { z } from 'zod';
import { LtError } from '../errors.ts';

/** The ops port of each long-running process, unless configured otherwise. */
export const OPS_PORTS = {
  agent: 9470,
  coordinator: 9471,
  ngdb: 9472,
  registry: 9473,
} as const;

export type OpsService = keyof typeof OPS_PORTS;

/**
 * The ops port of one process (`ops:` in an Agent Node's config; `--ops-port`, `--ops-host` and the environment
 * for the platform's services). docs/observability.md has the contract.
 */
export const OpsOptionsSchema = z
  .object({
    /** `false`: no ops port at all. @default true */
    enabled: z.boolean().default(true),
    /** @default 127.0.0.1 */
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 = any free port. @default the service's own ({@link OPS_PORTS}) */
    port: z.number().int().min(0).max(65535).optional(),
    /**
     * Own certificate and key (PEM files; `~/` is the home directory). Unset: one the platform CA signs for
     * `host`, made under LIENTHONG_HOME.
     */
    tls: z
      .object({ certFile: z.string().min(1), keyFile: z.string().min(1) })
      .strict()
      .optional(),
    /** `true`: plaintext HTTP (a developer's machine only); the process says it is insecure. @default false */
    insecure: z.boolean().default(false),
    /** How long `/ready` waits for each dependency, in milliseconds. @default 2000 */
    checkTimeoutMs: z.number().int().min(50).max(60_000).default(2_000),
  })
  .strict();

export type OpsOptions = z.input<typeof OpsOptionsSchema>;

/** The settings the ops server runs with: the options with their defaults, and the metrics token. */
export interface OpsSettings {
  enabled: boolean;
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  insecure: boolean;
  checkTimeoutMs: number;
  /** The bearer token `/metrics` requires (LIENTHONG_METRICS_TOKEN); unset: see docs/observability.md. */
  metricsToken?: string | undefined;
}

/** Applies the defaults of `service` and refuses what cannot work, naming the option and the rule. */
export function opsSettings(
  service: OpsService,
  options: OpsOptions,
  metricsToken: string | undefined,
): OpsSettings {
  const parsed = OpsOptionsSchema.safeParse(options);
  if (!parsed.success)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `ops options are invalid: ${parsed.error.issues.map((issue) => `ops.${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      { hint: 'see docs/observability.md, "Ports"' },
    );
  const value = parsed.data;
  return {
    ...value,
    port: value.port ?? OPS_PORTS[service],
    ...(metricsToken === undefined ? {} : { metricsToken }),
  };
}
