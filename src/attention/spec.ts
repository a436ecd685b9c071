// Which attention backend a run uses, as written on the command line and in the API:
//   "dense" | "magicpig" | "magicpig:K=10,L=150" | "streaming:window=256,sinks=4" …
// Parameters are numbers (or strings for list-valued ones such as dense layers "0,16" written "0+16").

export const ATTENTION_KINDS = ['dense', 'topk', 'quest', 'streaming', 'oracle-sampling', 'snapkv', 'magicpig'] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

export interface AttentionSpec {
  kind: AttentionKind;
  params: Readonly<Record<string, number | string>>;
}

export const DENSE: AttentionSpec = { kind: 'dense', params: {} };

export function parseAttentionSpec(text: string): AttentionSpec {
  const [kindText, paramText] = splitOnce(text.trim(), ':');
  if (!(ATTENTION_KINDS as readonly string[]).includes(kindText)) {
    throw new RangeError(`attention: unknown backend "${kindText}"; choose one of ${ATTENTION_KINDS.join(', ')} (e.g. magicpig:K=10,L=150)`);
  }
  const params: Record<string, number | string> = {};
  if (paramText !== undefined && paramText !== '') {
    for (const part of paramText.split(',')) {
      const [key, value] = splitOnce(part, '=');
      if (!key || value === undefined || value === '') throw new RangeError(`attention: parameter "${part}" must look like NAME=VALUE (in "${text}")`);
      if (key in params) throw new RangeError(`attention: parameter ${key} given twice (in "${text}")`);
      const num = Number(value);
      params[key] = Number.isFinite(num) ? num : value;
    }
  }
  return { kind: kindText as AttentionKind, params };
}

/** A spec whose one parameter may list several values joined by '/': one spec per value, in order
 *  ("streaming:sinks=4,window=64/256/1024": three windows; draft budgets the cost model chooses
 *  among). A spec without '/' gives itself alone. */
export function parseAttentionAlternatives(text: string): AttentionSpec[] {
  const [kindText, paramText] = splitOnce(text.trim(), ':');
  const parts = paramText === undefined ? [] : paramText.split(',');
  const listed = parts.flatMap((part, i) => (splitOnce(part, '=')[1]?.includes('/') ? [i] : []));
  if (listed.length === 0) return [parseAttentionSpec(text)];
  if (listed.length > 1) throw new RangeError(`attention: only one parameter may list alternatives (a/b/c), got ${listed.length} in "${text}"`);
  const [key, values] = splitOnce(parts[listed[0]!]!, '=');
  const alternatives = values!.split('/');
  if (alternatives.some((v) => v === '')) throw new RangeError(`attention: ${key}=${values} has an empty alternative (in "${text}")`);
  if (new Set(alternatives).size !== alternatives.length) throw new RangeError(`attention: ${key}=${values} lists a value twice (in "${text}")`);
  return alternatives.map((value) => parseAttentionSpec(`${kindText}:${parts.map((p, i) => (i === listed[0] ? `${key}=${value}` : p)).join(',')}`));
}

export function formatAttentionSpec(s: AttentionSpec): string {
  const p = Object.entries(s.params).map(([k, v]) => `${k}=${v}`).join(',');
  return p ? `${s.kind}:${p}` : s.kind;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
