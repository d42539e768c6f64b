import { describe, expect, it } from 'vitest';
import { consumerGroups, subjects, topics } from '../../../infra/kafka/topics.ts';

describe('topic and subject names', () => {
  it('builds the source, share and dead-letter topics of DESIGN.md §3', () => {
    expect(topics.source('population.citizen')).toBe('lt.src.population.citizen');
    expect(topics.share('ubnd-hn-citizen-01')).toBe('lt.share.ubnd-hn-citizen-01');
    expect(topics.deadLetter('ngdb')).toBe('lt.dlq.ngdb');
  });

  it('gives each agency dead-letter topics of its own', () => {
    expect(topics.deadLetter('ingest', 'BCA')).toBe('lt.dlq.ingest.bca');
    expect(topics.deadLetter('sink', 'UBND-HN')).toBe('lt.dlq.sink.ubnd-hn');
    expect(() => topics.deadLetter('sink', 'bca.x')).toThrow(/invalid agency code/);
  });

  it('uses TopicNameStrategy subjects', () => {
    expect(subjects.value('lt.src.population.citizen')).toBe('lt.src.population.citizen-value');
    expect(subjects.key('lt.src.population.citizen')).toBe('lt.src.population.citizen-key');
  });

  it('gives every job its own consumer group', () => {
    expect(consumerGroups.sink('UBND-HN')).toBe('lt.sink.ubnd-hn');
    expect(new Set([consumerGroups.coordinator, consumerGroups.ngdb, consumerGroups.sink('BHXH')]).size).toBe(
      3,
    );
  });

  it('refuses names that would smuggle another topic in', () => {
    expect(() => topics.source('population')).toThrow(/invalid dataset id/);
    expect(() => topics.source('Population.Citizen')).toThrow(/invalid dataset id/);
    expect(() => topics.share('a.b')).toThrow(/invalid agreement id/);
    expect(() => topics.deadLetter('')).toThrow(/invalid stage/);
  });
});
