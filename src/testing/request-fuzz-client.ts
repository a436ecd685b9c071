// The request fuzz's clients (request-fuzz.ts), in a child process of their own so that their
// memory (sockets, answers read back) is not counted as the server's, as the soak's clients
// (bench/serve-load-client.ts). The parent sends one job — cases [from, to) of a seed, `jobs` at a
// time — and gets their outcomes back.

import { fuzzCase, sendCase, type CasesResult, type CasesJob, type Outcome } from './request-fuzz-cases.js';

async function run(j: CasesJob): Promise<CasesResult> {
  const outcomes: Record<Outcome, number> = { ok: 0, refused: 0, busy: 0, 'server-error': 0, hang: 0, reset: 0 };
  const statuses: Record<string, number> = {};
  const failures: CasesResult['failures'] = [];
  let next = j.from;
  const worker = async () => {
    while (next < j.to) {
      const i = next++;
      const c = fuzzCase(j.seed, i);
      const r = await sendCase(j.port, c.raw, j.timeoutMs);
      outcomes[r.outcome]++;
      if (r.status !== undefined) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.outcome === 'server-error' || r.outcome === 'hang' || r.outcome === 'reset') failures.push({ index: i, kind: c.kind, ...r });
      if ((i + 1) % 500 === 0) process.send!({ progress: i + 1 });
    }
  };
  await Promise.all(Array.from({ length: j.jobs }, worker));
  return { outcomes, statuses, failures };
}

if (process.send !== undefined) {
  process.on('message', (j: CasesJob) => {
    run(j).then(
      (result) => process.send!({ ok: true, result }),
      (e: unknown) => process.send!({ ok: false, error: (e as Error).stack ?? String(e) }));
  });
  process.on('disconnect', () => process.exit(0));             // the parent ended
}
