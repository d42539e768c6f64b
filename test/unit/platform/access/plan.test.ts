import { describe, expect, it } from 'vitest';
import { aclKey } from '../../../../infra/kafka/acl.ts';
import { principals } from '../../../../infra/security/principals.ts';
import { desiredAcls } from '../../../../platform/access/plan.ts';
import { loadDictionary } from '../../../../schemas/model/dictionary.ts';

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
      ].sort(),
    );
  });

  it('never write, create or change anything', () => {
    expect(operator.filter((grant) => !/ (READ|DESCRIBE|DESCRIBE_CONFIGS) /.test(grant))).toEqual([]);
  });
});
