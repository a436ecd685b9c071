// Streaming text out of generated token ids: detokenisation that never emits a broken UTF-8 character,
// and stop strings matched on the decoded text, across token boundaries.
//
// Both are incremental filters: push what is new, get back the text that is safe to show now.

/** Turns token ids into text deltas. A byte-level token can end in the middle of a multi-byte UTF-8
 *  character; the tokenizer then decodes it to U+FFFD, so text ending in U+FFFD is held until the
 *  next token completes it. The window trick (as Hugging Face text-generation-inference does):
 *  decode ids[prefix:] and ids[prefix:read] and emit the difference, so leading-space rules of
 *  SentencePiece-style decoders see the same context both times and each step decodes a few ids only. */
export class StreamDecoder {
  private ids: number[] = [];
  private prefix = 0; // start of the decode window
  private read = 0;   // ids before this were emitted
  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** Adds one id; returns the text that became stable ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const now = this.decode(this.ids.slice(this.prefix));
    if (now.endsWith('\uFFFD')) {
      // Usually an incomplete character: wait. A UTF-8 character spans at most 4 byte tokens, so with
      // 4+ ids pending it is a real invalid sequence: emit all but the last 3 ids (they may still
      // start a character).
      if (this.ids.length - this.read < 4) return '';
      return this.advance(before, this.ids.length - 3);
    }
    return now.length > before.length ? this.advance(before, this.ids.length, now) : '';
  }

  private advance(before: string, upTo: number, text = this.decode(this.ids.slice(this.prefix, upTo))): string {
    if (text.length <= before.length) return '';
    this.prefix = this.read;
    this.read = upTo;
    return text.slice(before.length);
  }

  /** Text held back at the end of generation (an incomplete character decodes to U+FFFD here). */
  flush(): string {
    if (this.read === this.ids.length) return '';
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const now = this.decode(this.ids.slice(this.prefix));
    this.prefix = this.read = this.ids.length;
    return now.startsWith(before) ? now.slice(before.length) : now;
  }
}

export interface StopResult {
  /** Text safe to emit now. */
  text: string;
  /** A stop string was found: `text` ends right before it and nothing more should be generated. */
  stopped: boolean;
  /** The stop string that matched. */
  match?: string;
}

/** Finds the earliest stop string in a stream of text deltas. Text that could be the start of a stop
 *  string is held back until it is either completed (stop) or ruled out (emitted). */
export class StopMatcher {
  private held = '';
  private readonly stops: string[];
  /** One stop string or a list of them (a string is one stop string, as in OpenAI's API, never its characters). */
  constructor(stops: string | readonly string[] = []) {
    const list = typeof stops === 'string' ? [stops] : stops;
    if (!Array.isArray(list)) throw new TypeError(`stop must be a string or an array of strings, got ${typeof stops}`);
    for (const s of list) {
      if (typeof s !== 'string' || s.length === 0) throw new RangeError('stop strings must be non-empty strings');
    }
    this.stops = [...list];
  }

  push(delta: string): StopResult {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const text = this.held + delta;
    // The earliest match wins; at equal starts, the longer stop string (it covers the shorter).
    let at = -1, match = '';
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at || (i === at && s.length > match.length))) { at = i; match = s; }
    }
    if (at >= 0) { this.held = ''; return { text: text.slice(0, at), stopped: true, match }; }
    const keep = this.partialSuffix(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** Held text at the end of generation (no stop string completed). */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private partialSuffix(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) { best = n; break; }
      }
    }
    return best;
  }
}
