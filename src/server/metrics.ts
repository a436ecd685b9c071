// The server's /metrics in Prometheus's text exposition format (version 0.0.4): `# HELP` and `# TYPE`
// lines, then samples; counters end in _total; a histogram is cumulative `_bucket{le="…"}` samples
// ending with le="+Inf", then `_sum` and `_count`. Names follow vLLM's (vllm:num_requests_running,
// vllm:time_to_first_token_seconds, vllm:spec_decode_num_accepted_tokens_total, …) under the
// `tessera:` prefix, so a dashboard built for one reads the other by changing the prefix.

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Seconds, from 1 ms to 2 minutes: time to first token and end-to-end latency. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 120];
/** Seconds between two tokens of one sequence. */
const TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) { this.counts = buckets.map(() => 0); }
  observe(x: number): void {
    this.sum += x;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (x <= this.buckets[i]!) this.counts[i]!++;
  }
}

/** A label value with \, " and newline escaped, as the format requires. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus float text: integers plainly, others in JS notation, and ±Inf / NaN by their names. */
function value(x: number): string {
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return Number.isNaN(x) ? 'NaN' : String(x);
}

/** What /metrics reads from the engine at scrape time. */
export interface EngineGauges {
  running: number;
  waiting: number;
  kvPagesUsed?: number;
  kvPagesTotal?: number;
}

export class ServerMetrics {
  private readonly finished = new Map<string, number>();
  private readonly http = new Map<string, number>();
  promptTokens = 0;
  cachedPromptTokens = 0;
  generationTokens = 0;
  /** Whether any request speculated (the speculative counters are shown from then on). */
  speculating = false;
  specDrafts = 0;
  specDraftTokens = 0;
  specAcceptedTokens = 0;
  readonly ttft = new Histogram(LATENCY_BUCKETS);
  readonly interToken = new Histogram(TOKEN_BUCKETS);
  readonly e2e = new Histogram(LATENCY_BUCKETS);

  /** One answered HTTP request (handler: the route, or 'other'). */
  countHttp(handler: string, status: number): void {
    const key = `handler="${label(handler)}",status="${status}"`;
    this.http.set(key, (this.http.get(key) ?? 0) + 1);
  }

  /** One finished choice: 'stop', 'length' or 'abort'. */
  countFinished(reason: string): void {
    this.finished.set(reason, (this.finished.get(reason) ?? 0) + 1);
  }

  render(g: EngineGauges): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) => out.push(`# HELP tessera:${name} ${help}`, `# TYPE tessera:${name} ${type}`);
    const one = (name: string, type: 'counter' | 'gauge', help: string, x: number) => { head(name, type, help); out.push(`tessera:${name} ${value(x)}`); };
    const hist = (name: string, help: string, h: Histogram) => {
      head(name, 'histogram', help);
      h.buckets.forEach((b, i) => out.push(`tessera:${name}_bucket{le="${value(b)}"} ${h.counts[i]}`));
      out.push(`tessera:${name}_bucket{le="+Inf"} ${h.count}`, `tessera:${name}_sum ${value(h.sum)}`, `tessera:${name}_count ${h.count}`);
    };
    one('num_requests_running', 'gauge', 'Sequences decoding or prefilling now.', g.running);
    one('num_requests_waiting', 'gauge', 'Sequences waiting for a sequence slot.', g.waiting);
    head('request_success_total', 'counter', 'Finished choices by finish reason (abort: the client went away or the server shut down).');
    for (const [reason, n] of this.finished) out.push(`tessera:request_success_total{finished_reason="${label(reason)}"} ${n}`);
    head('http_requests_total', 'counter', 'HTTP requests answered, by route and status.');
    for (const [key, n] of this.http) out.push(`tessera:http_requests_total{${key}} ${n}`);
    one('prompt_tokens_total', 'counter', 'Prompt tokens of finished choices (counted once per prompt).', this.promptTokens);
    one('prefix_cache_hits_total', 'counter', 'Prompt tokens whose keys and values came from the prompt cache.', this.cachedPromptTokens);
    one('generation_tokens_total', 'counter', 'Generated tokens.', this.generationTokens);
    if (g.kvPagesTotal !== undefined && g.kvPagesUsed !== undefined) {
      one('kv_cache_usage_perc', 'gauge', 'Fraction of the KV pages in use (1 = full).', g.kvPagesTotal > 0 ? g.kvPagesUsed / g.kvPagesTotal : 0);
      one('kv_pages_used', 'gauge', 'KV pages in use (running sequences and the prompt cache).', g.kvPagesUsed);
      one('kv_pages_free', 'gauge', 'KV pages free.', g.kvPagesTotal - g.kvPagesUsed);
    }
    hist('time_to_first_token_seconds', 'Seconds from a request\'s arrival to its first generated token.', this.ttft);
    hist('inter_token_latency_seconds', 'Seconds between consecutive tokens of one sequence (per-token latency).', this.interToken);
    hist('e2e_request_latency_seconds', 'Seconds from a request\'s arrival to its last byte.', this.e2e);
    if (this.speculating) {
      one('spec_decode_num_drafts_total', 'counter', 'Speculative verification steps (each scores one draft).', this.specDrafts);
      one('spec_decode_num_draft_tokens_total', 'counter', 'Draft tokens proposed.', this.specDraftTokens);
      one('spec_decode_num_accepted_tokens_total', 'counter', 'Draft tokens accepted.', this.specAcceptedTokens);
    }
    return out.join('\n') + '\n';
  }
}
