// One error type for every malformed or hostile input file. The message always starts with the file
// (or format) and names the offending field, so a user can tell what is wrong and what to do next.

export class FormatError extends Error {
  constructor(readonly source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'FormatError';
  }
}

/** A value as an error message shows it: JSON, cut at 60 characters. A value nested too deeply to
 *  stringify (JSON.parse accepts 100,000 levels, JSON.stringify and String overflow the stack on them)
 *  is named by its type. */
export function showValue(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'number' || v === undefined ? String(v) : JSON.stringify(v);
  } catch {
    s = Array.isArray(v) ? 'a deeply nested array' : `a deeply nested ${typeof v}`;
  }
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** A message from another library, cut at 300 characters: it may quote a hostile file's field whole
 *  (a 1 MB "type" string), and an error message must stay readable and small. */
export function showMessage(message: string): string {
  return message.length > 300 ? `${message.slice(0, 300)}… (${message.length - 300} more characters)` : message;
}

/** Converts a u64/i64 read as BigInt to a Number, refusing values above `max` (default 2^53 − 1). */
export function checkedNumber(source: string, what: string, value: bigint, max: number = Number.MAX_SAFE_INTEGER): number {
  if (value < 0n || value > BigInt(max)) {
    throw new FormatError(source, `${what} = ${value} is out of range (must be between 0 and ${max})`);
  }
  return Number(value);
}

/** a · b with overflow detection (products above 2^53 − 1 are refused). */
export function checkedMul(source: string, what: string, a: number, b: number): number {
  const p = a * b;
  if (!Number.isSafeInteger(p) || p < 0) throw new FormatError(source, `${what}: ${a} × ${b} overflows`);
  return p;
}
