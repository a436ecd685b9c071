// What every synthetic task generator returns, and the scorers shared by them.

/** A task over token ids. Training uses `tokens` with the loss on `answerPositions`; evaluation
 *  compares the model's next-token prediction before each answer position with `target`. */
export interface IdTask {
  /** The whole sequence, answers in place.  (n) */
  tokens: Int32Array;
  /** Positions in `tokens` of the answers; each is predicted from tokens[0 .. pos).  (m) */
  answerPositions: Int32Array;
  /** The prompt: tokens before the first answer. */
  input: Int32Array;
  /** The answers in order: tokens[answerPositions[i]].  (m) */
  target: Int32Array;
  /** Fraction of answers predicted right (predictions[i] is the guess for target[i]). */
  score(predictions: ArrayLike<number>): number;
}

/** A task over text: the model reads `input` and continues it; `target` is the right continuation. */
export interface TextTask {
  input: string;
  /** The expected continuation (starts with a space, e.g. " 4081123"). */
  target: string;
  /** The answer strings the scorer looks for. */
  answers: string[];
  /** 1 for a right answer, partial credit for multi-answer tasks, 0 otherwise. */
  score(prediction: string): number;
  /** Generation details (depths, counts, token count of `input` as measured). */
  meta: Record<string, number | string>;
}

/** Token counter used to size text tasks. */
export type CountTokens = (text: string) => number;

/** Fraction of `predictions[i] === target[i]` (missing predictions count as wrong). */
export function exactMatchFraction(target: ArrayLike<number>, predictions: ArrayLike<number>): number {
  if (target.length === 0) return 1;
  let right = 0;
  for (let i = 0; i < target.length; i++) if (i < predictions.length && predictions[i] === target[i]) right++;
  return right / target.length;
}

/** RULER's string_match_all: the fraction of answers found in the prediction, here as whole
 *  numbers/words (so "123" is not found inside "51234"). */
export function matchAllFraction(answers: readonly string[], prediction: string): number {
  if (answers.length === 0) return 1;
  const found = answers.filter((a) => new RegExp(`(?<![\\p{L}\\p{N}])${a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}])`, 'iu').test(prediction));
  return found.length / answers.length;
}

/** Builds an IdTask from a full sequence and its answer positions. */
export function idTask(tokens: Int32Array, answerPositions: Int32Array): IdTask {
  const target = Int32Array.from(answerPositions, (p) => tokens[p]);
  return {
    tokens, answerPositions, target,
    input: tokens.subarray(0, answerPositions.length ? answerPositions[0] : tokens.length),
    score: (predictions) => exactMatchFraction(target, predictions),
  };
}

/** A text task as ids: encode(input) followed by encode(target), the answers being target's ids. */
export function encodeTextTask(task: TextTask, encode: (text: string) => number[]): IdTask {
  const a = encode(task.input), b = encode(task.target);
  const tokens = Int32Array.from([...a, ...b]);
  return idTask(tokens, Int32Array.from(b, (_, i) => a.length + i));
}
