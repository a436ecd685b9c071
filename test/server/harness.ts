// A Tessera server on 127.0.0.1 (a free port) over the bundled models/default, for the server tests.

import { load, type Tessera, type TesseraOptions } from '../../src/api/index.js';
import type { LoadOptions } from '../../src/models/load.js';
import { TesseraServer, type ServeOptions } from '../../src/server/server.js';
import { Scheduler } from '../../src/generation/scheduler.js';

export const MODEL = 'models/default';

export interface Running {
  url: string;
  server: TesseraServer;
  t: Tessera;
  /** KV pages in use now. */
  pages(): number;
  /** Forward steps the model's scheduler has run. */
  steps(): number;
  close(): Promise<void>;
}

export async function startServer(serve: ServeOptions = {}, loadOpts: LoadOptions & TesseraOptions = {}): Promise<Running> {
  const t = await load(MODEL, { threads: 1, ...loadOpts });
  const server = new TesseraServer(serve);
  const { port } = await server.listen(0, '127.0.0.1');
  server.ready(t);
  return {
    url: `http://127.0.0.1:${port}`, server, t,
    pages: () => t.model.kvPages!.used,
    steps: () => Scheduler.of(t.model).stats.steps,
    close: async () => { await server.shutdown(1000); t.dispose(); },
  };
}

/** POSTs JSON (or a raw string) and returns status, headers and the parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, headers: r.headers, json };
}

/** Polls `f` every event-loop turn until it is true or `ms` pass; whether it became true. */
export async function until(f: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}
