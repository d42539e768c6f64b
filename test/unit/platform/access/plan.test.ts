import { describe, expect, it } from 'vitest';
import { aclKey } from '../../../../infra/kafka/acl.ts';
import { consumerGroups, topics } from '../../../../infra/kafka/topics.ts';
import { principals } from '../../../../infra/security/principals.ts';
import { desiredAcls } from '../../../../platform/access/plan.ts';
import { loadDictionary } from '../../../../schemas/model/dictionary.ts';

const acls = desiredAcls({ dictionary: loadDictionary(), agreements: [] });
const of = (principal: string) =>
  acls
    .filter((acl) => acl.principal === `User:${principal}`)
    .map((acl) => `${acl.operation} ${acl.resource} ${acl.pattern} ${acl.name}`);

describe('broker permissions for dead letters', () => {
  it('lets the operator write only the NGDB redrive topic, never a source or share topic', () => {
    const operator = of(principals.operator);
    expect(operator).toContain(`WRITE TOPIC LITERAL ${topics.redrive('ngdb')}`);
    expect(operator).toContain('READ GROUP PREFIXED lt.');
    expect(operator).toContain('IDEMPOTENT_WRITE CLUSTER LITERAL kafka-cluster');
    expect(operator.filter((grant) => grant.startsWith('WRITE '))).toEqual([
      `WRITE TOPIC LITERAL ${topics.redrive('ngdb')}`,
    ]);
  });

  it('lets only the NGDB sink read the NGDB redrive topic', () => {
    const readers = acls
      .filter((acl) => acl.name === topics.redrive('ngdb') && acl.operation === 'READ')
      .map((acl) => acl.principal);
    expect(readers).toEqual([`User:${principals.ngdb}`]);
  });

  it('keeps every source topic written by its owner alone', () => {
    const writers = acls.filter(
      (acl) => acl.operation === 'WRITE' && acl.resource === 'TOPIC' && acl.name.startsWith('lt.src'),
    );
    expect(
      writers.every((acl) => acl.principal.startsWith('User:agency.') && acl.pattern === 'LITERAL'),
    ).toBe(true);
  });
});

describe('the operator’s broker grants', () => {
  const operator = desiredAcls({ dictionary: loadDictionary(), agreements: [] })
    .filter((grant) => grant.principal === `User:${principals.operator}`)
    .map(aclKey)
    .sort();

  it('are what replay, dead letters and lag need, and nothing more', () => {
    expect(operator).toEqual(
      [
        // replay: OffsetCommit of a stopped group needs READ on the group and on each topic it commits for
        'User:lt-operator READ GROUP:lt.*',
        'User:lt-operator READ TOPIC:lt.src.*',
        'User:lt-operator READ TOPIC:lt.share.*',
        // dead letters, and lag and status of everything
        'User:lt-operator READ TOPIC:lt.dlq.*',
        'User:lt-operator DESCRIBE TOPIC:lt.*',
        'User:lt-operator DESCRIBE_CONFIGS TOPIC:lt.*',
        // redrive of the NGDB's dead letters: its own topic, which only the NGDB sink reads
        `User:lt-operator WRITE TOPIC:${topics.redrive('ngdb')}`,
        'User:lt-operator IDEMPOTENT_WRITE CLUSTER:kafka-cluster',
      ].sort(),
    );
  });

  it('never create or change anything, and write nothing but the redrive topic', () => {
    expect(
      operator.filter((grant) => !/ (READ|DESCRIBE|DESCRIBE_CONFIGS|IDEMPOTENT_WRITE) /.test(grant)),
    ).toEqual([`User:lt-operator WRITE TOPIC:${topics.redrive('ngdb')}`]);
  });
});

describe('broker permissions for the coordinator', () => {
  it('lets it read through its backfill groups, which lie inside its own group prefix', () => {
    const group = consumerGroups.coordinatorBackfill('bhxh-all', 3);
    const grants = acls.filter(
      (acl) =>
        acl.principal === `User:${principals.coordinator}` &&
        acl.resource === 'GROUP' &&
        acl.operation === 'READ' &&
        (acl.pattern === 'PREFIXED' ? group.startsWith(acl.name) : group === acl.name),
    );
    expect(grants).toHaveLength(1);
    expect(group).toBe('lt.coordinator.backfill.bhxh-all.3');
  });
});
