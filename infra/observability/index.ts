export { deadLetterDepthReader } from './dead-letter-depth.ts';
export { countHttpRequests } from './http-metrics.ts';
export { PipelineMetrics, type Stage, type StreamLabels } from './metrics.ts';
export {
  OPS_PORTS,
  OpsOptionsSchema,
  opsSettings,
  type OpsOptions,
  type OpsService,
  type OpsSettings,
} from './options.ts';
export {
  createOpsServer,
  opsTls,
  startOpsServer,
  type OpsServerOptions,
  type RunningOpsServer,
} from './ops-server.ts';
export {
  checkReadiness,
  kafkaCheck,
  postgresCheck,
  redisCheck,
  registryCheck,
  type CheckResult,
  type Readiness,
  type ReadinessCheck,
} from './readiness.ts';
export {
  carryTrace,
  childOf,
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  TRACEPARENT,
  traceIdFor,
  traceLogFields,
  traceOfHeaders,
  traceparentFor,
  type TraceContext,
} from './trace.ts';
