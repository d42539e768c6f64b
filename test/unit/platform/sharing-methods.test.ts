import { describe, expect, it } from 'vitest';
import { topics } from '../../../infra/kafka/topics.ts';
import { desiredAcls } from '../../../platform/access/plan.ts';
import { desiredTopics } from '../../../platform/topics/plan.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';

const dictionary = loadDictionary();
const fields = ['personal_id', 'full_name', 'province_code'];
const streamed = approvedAgreement({
  id: 'hn-sync',
  subscriber: 'UBND-HN',
  dataset: 'population.citizen',
  fields,
});
const both = approvedAgreement({
  id: 'hcm-both',
  subscriber: 'UBND-HCM',
  dataset: 'population.citizen',
  fields,
  methods: ['sync', 'query'],
});
const queryOnly = approvedAgreement({
  id: 'btc-query',
  subscriber: 'BTC',
  dataset: 'population.citizen',
  fields,
  methods: ['query'],
});
const agreements = [streamed, both, queryOnly];

describe('only an agreement with method sync has a stream', () => {
  it('gets a share topic; a query-only agreement gets none', () => {
    const names = desiredTopics({ dictionary, agreements, existing: new Map() }).map((spec) => spec.topic);
    expect(names).toContain(topics.share('hn-sync'));
    expect(names).toContain(topics.share('hcm-both'));
    expect(names).not.toContain(topics.share('btc-query'));
  });

  it('gives its subscriber read on the share topic; a query-only subscriber reads no share topic', () => {
    const reads = desiredAcls({ dictionary, agreements })
      .filter(
        (acl) => acl.resource === 'TOPIC' && acl.operation === 'READ' && acl.name.startsWith('lt.share.'),
      )
      .map((acl) => `${acl.principal} ${acl.name}`);
    expect(reads).toContain(`User:agency.UBND-HN ${topics.share('hn-sync')}`);
    expect(reads).toContain(`User:agency.UBND-HCM ${topics.share('hcm-both')}`);
    expect(reads.filter((read) => read.startsWith('User:agency.BTC '))).toEqual([]);
  });
});
