// The config of the long-context run (configs/long-context.json): model sizes, tokenizer, task mix,
// the context curriculum (stages of steps × batch × context, the last one at the final context),
// optimisation and output folders. Every field is checked here, so a typo fails before training.

import { readFileSync } from 'node:fs';
import { TASK_KINDS, type CountingSpec, type NeedleSpec, type TaskKind } from './tasks.js';

/** A curriculum stage; `mix` overrides the run's task mix during it. */
export interface Stage { steps: number; context: number; batch: number; mix?: Partial<Record<TaskKind, number>> }

export interface LongContextConfig {
  model: { d: number; layers: number; heads: number; kvHeads: number; ffn: number; ropeTheta: number };
  tokenizer: { vocabSize: number; seed: number };
  counting: CountingSpec;
  /** Needle values: numbers of `digits` digits, or words (one-token names). */
  needle: NeedleSpec;
  mix: Partial<Record<TaskKind, number>>;
  stages: Stage[];
  /** Language-model rows scored per sequence (besides the answers), and their loss weight. */
  lmRows: number;
  lmWeight: number;
  /** Multikey training examples also ask about every other needle after the first answer. */
  extraQuestions: boolean;
  lr: number; minLr: number; warmup: number; weightDecay: number; clip: number;
  /** The learning rate stays at `lr` until this step, then follows a cosine down to minLr (default: right after warm-up). */
  decayFrom?: number;
  seed: number;
  /** Threads for the matmuls and attention (1 = main thread only). */
  threads: number;
  /** Held-out answer loss/accuracy every N steps on evalExamples sequences of evalContext tokens. */
  evalEvery: number; evalExamples: number; evalContext: number;
  checkpointEvery: number;
  /** Run folder (checkpoint, logs) and the exported model folder. */
  out: string; modelDir: string;
  /** Start from this exported model folder's parameters (fresh optimizer and steps); a checkpoint in `out` wins on --resume. */
  initFrom?: string;
}

const int = (v: unknown, name: string, min = 0): number => {
  if (!Number.isInteger(v) || (v as number) < min) throw new Error(`long-context config: ${name} = ${JSON.stringify(v)} must be an integer ≥ ${min}`);
  return v as number;
};
const num = (v: unknown, name: string, min = 0): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`long-context config: ${name} = ${JSON.stringify(v)} must be a number ≥ ${min}`);
  return v;
};
const oneOf = <T extends string>(v: unknown, name: string, choices: readonly T[]): T => {
  if (!choices.includes(v as T)) throw new Error(`long-context config: ${name} = ${JSON.stringify(v)} must be ${choices.map((c) => `"${c}"`).join(' or ')}`);
  return v as T;
};
const str = (v: unknown, name: string): string => {
  if (typeof v !== 'string' || v.length === 0) throw new Error(`long-context config: ${name} must be a non-empty string`);
  return v;
};

/** Checks a parsed config object; returns it typed. */
export function validateConfig(o: Record<string, unknown>): LongContextConfig {
  const m = (o.model ?? {}) as Record<string, unknown>;
  const t = (o.tokenizer ?? {}) as Record<string, unknown>;
  const c = (o.counting ?? {}) as Record<string, unknown>;
  const mix = (o.mix ?? {}) as Record<string, unknown>;
  const nd = (o.needle ?? {}) as Record<string, unknown>;
  const checkMix = (m: Record<string, unknown>, where: string) => {
    for (const k of Object.keys(m)) {
      if (!TASK_KINDS.includes(k as TaskKind)) throw new Error(`long-context config: ${where} names an unknown task ${JSON.stringify(k)} (known: ${TASK_KINDS.join(', ')})`);
      num(m[k], `${where}.${k}`);
    }
  };
  checkMix(mix, 'mix');
  if (!Array.isArray(o.stages) || o.stages.length === 0) throw new Error('long-context config: stages must be a non-empty list of { steps, context, batch }');
  const stages: Stage[] = (o.stages as Record<string, unknown>[]).map((s, i) => {
    if (s.mix !== undefined) checkMix(s.mix as Record<string, unknown>, `stages[${i}].mix`);
    return {
      steps: int(s.steps, `stages[${i}].steps`, 1), context: int(s.context, `stages[${i}].context`, 64), batch: int(s.batch, `stages[${i}].batch`, 1),
      ...(s.mix !== undefined ? { mix: s.mix as Partial<Record<TaskKind, number>> } : {}),
    };
  });
  const cfg: LongContextConfig = {
    model: {
      d: int(m.d, 'model.d', 8), layers: int(m.layers, 'model.layers', 1), heads: int(m.heads, 'model.heads', 1),
      kvHeads: int(m.kvHeads ?? m.heads, 'model.kvHeads', 1), ffn: int(m.ffn, 'model.ffn', 1), ropeTheta: num(m.ropeTheta ?? 10000, 'model.ropeTheta', 1),
    },
    tokenizer: { vocabSize: int(t.vocabSize, 'tokenizer.vocabSize', 1300), seed: int(t.seed ?? 7, 'tokenizer.seed') },
    counting: { distinctWords: int(c.distinctWords ?? 10, 'counting.distinctWords', 2), marginFraction: num(c.marginFraction ?? 0.5, 'counting.marginFraction') },
    needle: { values: oneOf(nd.values ?? 'number', 'needle.values', ['number', 'word'] as const), digits: int(nd.digits ?? 6, 'needle.digits', 1) },
    mix: mix as Partial<Record<TaskKind, number>>,
    stages,
    lmRows: int(o.lmRows ?? 0, 'lmRows'), lmWeight: num(o.lmWeight ?? 0, 'lmWeight'), extraQuestions: o.extraQuestions === true,
    lr: num(o.lr, 'lr'), minLr: num(o.minLr ?? (o.lr as number) / 10, 'minLr'), warmup: int(o.warmup ?? 0, 'warmup'),
    weightDecay: num(o.weightDecay ?? 0.1, 'weightDecay'), clip: num(o.clip ?? 1, 'clip'),
    ...(o.decayFrom !== undefined ? { decayFrom: int(o.decayFrom, 'decayFrom') } : {}),
    seed: int(o.seed ?? 1, 'seed'), threads: int(o.threads ?? 1, 'threads', 1),
    evalEvery: int(o.evalEvery ?? 0, 'evalEvery'), evalExamples: int(o.evalExamples ?? 8, 'evalExamples', 1),
    evalContext: int(o.evalContext ?? stages[stages.length - 1].context, 'evalContext', 64),
    checkpointEvery: int(o.checkpointEvery ?? 0, 'checkpointEvery'),
    out: str(o.out, 'out'), modelDir: str(o.modelDir, 'modelDir'),
    ...(o.initFrom !== undefined ? { initFrom: str(o.initFrom, 'initFrom') } : {}),
  };
  const { d, heads, kvHeads } = cfg.model;
  if (d % heads !== 0 || (d / heads) % 2 !== 0) throw new Error(`long-context config: model.d ${d} must split into ${heads} heads of an even size`);
  if (heads % kvHeads !== 0) throw new Error(`long-context config: model.heads ${heads} must be a multiple of model.kvHeads ${kvHeads}`);
  if (cfg.initFrom !== undefined && cfg.initFrom.replace(/\/+$/, '') === cfg.modelDir.replace(/\/+$/, '')) throw new Error(`long-context config: modelDir must differ from initFrom (${cfg.initFrom}): the export would overwrite the model it starts from`);
  return cfg;
}

export function readConfig(path: string): LongContextConfig {
  let raw: Record<string, unknown>;
  try { raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>; } catch (e) {
    throw new Error(`long-context config ${path}: ${(e as Error).message}`);
  }
  return validateConfig(raw);
}

/** Total optimizer steps over all stages. */
export function totalSteps(cfg: LongContextConfig): number {
  return cfg.stages.reduce((s, st) => s + st.steps, 0);
}

/** The stage of (0-based) optimizer step `step` (the last stage past the end). */
export function stageAt(cfg: LongContextConfig, step: number): Stage {
  let end = 0;
  for (const s of cfg.stages) { end += s.steps; if (step < end) return s; }
  return cfg.stages[cfg.stages.length - 1];
}

/** The longest context of the curriculum (the model's max_position_embeddings). */
export function finalContext(cfg: LongContextConfig): number {
  return Math.max(...cfg.stages.map((s) => s.context));
}
