export {
  bytesPreview,
  formatDeadLetterAddress,
  parseDeadLetterAddress,
  type DeadLetterAddress,
  type DeadLetterRecord,
  type DeadLetterResolution,
  type DeadLetterView,
} from './dead-letter.ts';
export {
  DEAD_LETTER_STAGES,
  parseDeadLetterFilter,
  type DeadLetterFilter,
  type DeadLetterFilterInput,
  type DeadLetterStage,
} from './filter.ts';
export {
  deadLetterCounts,
  discardDeadLetters,
  listDeadLetters,
  redriveDeadLetters,
  showDeadLetter,
  type DeadLetterCount,
  type DeadLetterDetail,
  type DeadLetterSelection,
  type DeadLetterSources,
  type DiscardReport,
  type RedriveOptions,
  type RedriveReport,
  type RedriveRefusal,
} from './dead-letters.ts';
