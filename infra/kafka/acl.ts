import kafkajs, { type Kafka } from 'kafkajs';

// kafkajs is CommonJS: Node's ESM loader does not see these exports by name
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

export type AclResource = 'TOPIC' | 'GROUP' | 'CLUSTER';
export type AclPattern = 'LITERAL' | 'PREFIXED';
export type AclOperation =
  | 'READ'
  | 'WRITE'
  | 'CREATE'
  | 'DELETE'
  | 'ALTER'
  | 'DESCRIBE'
  | 'DESCRIBE_CONFIGS'
  | 'ALTER_CONFIGS'
  | 'IDEMPOTENT_WRITE';

/** One ALLOW rule for a principal on any host: the only kind lienthong grants (the authorizer denies the rest). */
export interface AclGrant {
  /** `User:<name>`. */
  principal: string;
  resource: AclResource;
  /** `kafka-cluster` for the cluster. */
  name: string;
  pattern: AclPattern;
  operation: AclOperation;
}

export interface AclChange {
  action: 'grant' | 'revoke';
  acl: AclGrant;
}

/** The Kafka cluster resource's name. */
export const CLUSTER = 'kafka-cluster';

const RESOURCE: Record<AclResource, number> = {
  TOPIC: AclResourceTypes.TOPIC,
  GROUP: AclResourceTypes.GROUP,
  CLUSTER: AclResourceTypes.CLUSTER,
};
const PATTERN: Record<AclPattern, number> = {
  LITERAL: ResourcePatternTypes.LITERAL,
  PREFIXED: ResourcePatternTypes.PREFIXED,
};
const OPERATION: Record<AclOperation, number> = {
  READ: AclOperationTypes.READ,
  WRITE: AclOperationTypes.WRITE,
  CREATE: AclOperationTypes.CREATE,
  DELETE: AclOperationTypes.DELETE,
  ALTER: AclOperationTypes.ALTER,
  DESCRIBE: AclOperationTypes.DESCRIBE,
  DESCRIBE_CONFIGS: AclOperationTypes.DESCRIBE_CONFIGS,
  ALTER_CONFIGS: AclOperationTypes.ALTER_CONFIGS,
  IDEMPOTENT_WRITE: AclOperationTypes.IDEMPOTENT_WRITE,
};

function nameOf<T extends string>(table: Record<T, number>, value: number): T | undefined {
  return (Object.keys(table) as T[]).find((key) => table[key] === value);
}

/** One line per grant, stable: what `acl sync` prints and compares. */
export function aclKey(acl: AclGrant): string {
  return `${acl.principal} ${acl.operation} ${acl.resource}:${acl.pattern === 'PREFIXED' ? `${acl.name}*` : acl.name}`;
}

function toKafkajs(acl: AclGrant) {
  return {
    resourceType: RESOURCE[acl.resource],
    resourceName: acl.name,
    resourcePatternType: PATTERN[acl.pattern],
    principal: acl.principal,
    host: '*',
    operation: OPERATION[acl.operation],
    permissionType: AclPermissionTypes.ALLOW,
  };
}

/** Every ACL the cluster holds, as grants; a rule lienthong never writes (a DENY, a host) as it is, to revoke. */
export async function currentAcls(kafka: Kafka): Promise<{ grants: AclGrant[]; foreign: string[] }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
      operation: AclOperationTypes.ANY,
    });
    const grants: AclGrant[] = [];
    const foreign: string[] = [];
    for (const resource of resources) {
      for (const acl of resource.acls) {
        const type = nameOf(RESOURCE, resource.resourceType);
        const pattern = nameOf(PATTERN, resource.resourcePatternType);
        const operation = nameOf(OPERATION, acl.operation);
        if (
          !type ||
          !pattern ||
          !operation ||
          acl.permissionType !== AclPermissionTypes.ALLOW ||
          acl.host !== '*'
        )
          foreign.push(
            `${acl.principal} op=${acl.operation} permission=${acl.permissionType} host=${acl.host} on ` +
              `${resource.resourceType}:${resource.resourceName} (pattern ${resource.resourcePatternType})`,
          );
        else
          grants.push({
            principal: acl.principal,
            resource: type,
            name: resource.resourceName,
            pattern,
            operation,
          });
      }
    }
    return { grants, foreign };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Makes the cluster's ACLs exactly `desired`: grants what is missing and revokes what is not desired (ACLs are
 * derived state; a grant nobody derives is a leak). Returns the changes, applied unless `dryRun`; a second run
 * returns none. Rules of a kind lienthong never writes (DENY, a host) are reported in `foreign`, not touched.
 */
export async function reconcileAcls(
  kafka: Kafka,
  desired: readonly AclGrant[],
  { dryRun = false }: { dryRun?: boolean } = {},
): Promise<{ changes: AclChange[]; foreign: string[] }> {
  const { grants, foreign } = await currentAcls(kafka);
  const wanted = new Map(desired.map((acl) => [aclKey(acl), acl]));
  const held = new Map(grants.map((acl) => [aclKey(acl), acl]));
  const changes: AclChange[] = [
    ...[...wanted].filter(([key]) => !held.has(key)).map(([, acl]) => ({ action: 'grant' as const, acl })),
    ...[...held].filter(([key]) => !wanted.has(key)).map(([, acl]) => ({ action: 'revoke' as const, acl })),
  ].sort((a, b) => (aclKey(a.acl) < aclKey(b.acl) ? -1 : 1));
  if (dryRun || changes.length === 0) return { changes, foreign };
  const admin = kafka.admin();
  await admin.connect();
  try {
    const grant = changes
      .filter((change) => change.action === 'grant')
      .map((change) => toKafkajs(change.acl));
    const revoke = changes
      .filter((change) => change.action === 'revoke')
      .map((change) => toKafkajs(change.acl));
    // revocations first: a subscriber whose agreement ended loses its read before anything else happens
    if (revoke.length > 0) await admin.deleteAcls({ filters: revoke });
    if (grant.length > 0) await admin.createAcls({ acl: grant });
  } finally {
    await admin.disconnect();
  }
  return { changes, foreign };
}
