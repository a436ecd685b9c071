// Synthetic tasks for training and evaluation: what every generator returns, and the scorers.
// Generators: synthetic-recall.ts (associative recall, induction; token ids), synthetic-needle.ts
// (RULER-style needle retrieval; text), synthetic-count.ts (most frequent word, occurrence counts;
// text). All are deterministic functions of their options (seed included).

export { associativeRecall, inductionCopy, type AssociativeRecallOptions, type InductionOptions } from './synthetic-recall.js';
export { needleTask, NOISE_SENTENCES, type NeedleOptions, type NeedleVariant } from './synthetic-needle.js';
export { countingTask, type CountingOptions, type CountingVariant } from './synthetic-count.js';

export * from './synthetic-task.js';
