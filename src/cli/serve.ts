// `tessera serve`: the OpenAI-compatible HTTP server (src/server). It listens at once (/health answers
// 503 while the model loads), then serves; SIGTERM or SIGINT stops admitting, lets running requests
// finish for --grace seconds, cancels the rest and exits 0.

import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_FLAGS, loadForCli, speculationFor } from './model-flags.js';
import { parseSpeculateSpec } from '../generation/speculative.js';
import { TesseraServer, type ServeOptions } from '../server/server.js';
import { readTextFile } from '../formats/regular-file.js';
import type { Tessera } from '../api/tessera.js';

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  host: { type: 'string', default: '127.0.0.1', placeholder: 'ADDR', description: 'address to listen on (0.0.0.0: every interface; put a key on it)' },
  port: { type: 'integer', min: 0, max: 65535, default: 8080, placeholder: 'N', description: 'port (0: any free port, printed)' },
  'api-key': { type: 'string', placeholder: 'KEY', description: 'require Authorization: Bearer KEY (all routes but /health)' },
  'api-key-file': { type: 'string', placeholder: 'FILE', description: 'read the key from the first line of FILE (keeps it out of the process list)' },
  cors: { type: 'string', placeholder: 'ORIGIN', description: "allow browser requests from ORIGIN ('*' for any)" },
  speculate: { type: 'string', placeholder: 'SPEC', description: "speculative decoding for requests that do not set 'speculate' (nor logprobs): draft=prompt-lookup[,gamma=4]; self-speculation draft=streaming:window=256 | snapkv:budget=512 | magicpig:dense=0 (window=64/256/1024: draft budgets the cost model chooses among, with gamma auto); a small model sharing the tokenizer, loaded once for all requests: draft=model:PATH[,gamma=N][,attention=SPEC] (attention last); gamma=auto: γ from the cost model" },
  'prompt-cache': { type: 'integer', min: 0, max: 64, default: 4, placeholder: 'N', description: 'finished conversations kept for prefix reuse (idle ones give memory back on demand; 0 = off)' },
  queue: { type: 'integer', min: 0, max: 100000, default: 64, placeholder: 'N', description: 'sequences that may wait beyond --parallel; past it requests get 503 + Retry-After' },
  'max-body': { type: 'integer', min: 1024, max: 1024 ** 3, default: 4 * 1024 * 1024, placeholder: 'BYTES', description: 'largest request body (413 past it)' },
  timeout: { type: 'integer', min: 1, max: 86400, default: 600, placeholder: 'SECONDS', description: 'close a connection silent this long' },
  grace: { type: 'integer', min: 0, max: 3600, default: 10, placeholder: 'SECONDS', description: 'on SIGTERM, how long running requests may finish before they are cancelled' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

const SUMMARY = `An OpenAI-compatible HTTP server: /v1/completions, /v1/chat/completions (streaming with stream: true),
/v1/models, /tokenize, /detokenize, /health, /metrics (Prometheus). Requests are decoded together
(continuous batching, up to --parallel sequences); send Ctrl-C or SIGTERM to stop.
Example: tessera serve --model models/default --port 8080
         curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\
           -d '{"messages": [{"role": "user", "content": "Tell me about the railroads."}], "max_tokens": 32}'`;

export async function runServe(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'serve');
  if (v.help) { process.stdout.write(formatHelp('serve', SUMMARY, FLAGS)); return 0; }
  if (v['api-key'] !== undefined && v['api-key-file'] !== undefined) throw new UsageError('give one of --api-key or --api-key-file, not both', 'serve');
  let apiKey = v['api-key'] as string | undefined;
  if (v['api-key-file'] !== undefined) {
    const file = v['api-key-file'] as string;
    apiKey = readTextFile(file, 4096, 'API key file').split(/\r?\n/)[0]!.trim();
    if (apiKey === '') throw new CliError(`the API key file ${file} is empty`, 'write the key on its first line');
  }
  if (apiKey !== undefined && apiKey.length === 0) throw new UsageError('--api-key is empty', 'serve');
  const opts: ServeOptions = {
    apiKey, maxQueued: v.queue as number, maxBodyBytes: v['max-body'] as number, idleTimeoutMs: (v.timeout as number) * 1000,
  };
  if (v.cors !== undefined) opts.cors = v.cors as string;
  const speculation = speculationFor(v);           // the spec (and a draft model's path) checked before loading
  const draftModel = v.speculate !== undefined && typeof parseSpeculateSpec(v.speculate as string).draft === 'object';
  if (v.speculate !== undefined && !draftModel) opts.speculate = v.speculate as string;
  const server = new TesseraServer(opts);
  let address: { port: number; host: string };
  try {
    address = await server.listen(v.port as number, v.host as string);
  } catch (e) {
    throw new CliError(`cannot listen on ${v.host}:${v.port}: ${(e as Error).message}`, 'choose another --port (0 picks a free one) or --host');
  }
  const closed = new Promise<void>((resolve) => server.http.once('close', () => resolve()));
  process.stderr.write(`tessera serve: listening on http://${address.host}:${address.port} (loading the model; /health answers 503 until it is ready)\n`);
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    process.stderr.write(`tessera serve: ${signal}: finishing running requests (up to ${v.grace} s), then exiting\n`);
    stopping = server.shutdown((v.grace as number) * 1000);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const { 'prompt-cache': promptCache } = v;
  let tessera: Tessera | undefined, draft: Awaited<ReturnType<typeof speculation.load>>;
  try {
    tessera = await loadForCli(v, { promptCache: promptCache as number });
    // a draft model is loaded once and shared by every request (each sequence its own draft cache)
    draft = await speculation.load(tessera);
  } catch (e) {
    tessera?.dispose();
    await server.shutdown(0);                        // a model that does not load ends the process, not just the log
    throw e;
  }
  if (stopping === undefined) {
    server.ready(tessera, draftModel ? draft.speculate : undefined);
    const drafting = draftModel ? `, speculating with ${(draft.speculate!.draft as { name: string }).name}` : '';
    process.stderr.write(`tessera serve: ready: model ${tessera.name}, context ${tessera.contextLength} tokens, ${tessera.model.parallel} sequences at once${drafting}\n`);
  }
  await closed;
  await stopping;
  draft.dispose();
  tessera.dispose();
  process.stderr.write('tessera serve: stopped\n');
  return 0;
}
