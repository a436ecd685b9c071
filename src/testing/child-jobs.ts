// A child process that runs jobs for a measurement in this one, one at a time over IPC, so that the
// jobs' CPU time does not delay this process's event loop and their memory is not counted as this
// process's: the soak's clients (bench/serve-load-client.ts) and the request fuzz's
// (testing/request-fuzz-client.ts). The child answers each job with {ok: true, result} or
// {ok: false, error}, and may send {progress: number} messages before its answer.

import { fork, type ChildProcess } from 'node:child_process';

export class ChildJobs<Job extends object, Result> {
  private readonly child: ChildProcess;

  /** Starts `modulePath` (a compiled .js file) as the child. */
  constructor(modulePath: string, private readonly onProgress?: (progress: number) => void) {
    this.child = fork(modulePath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  run(job: Job, name = 'a'): Promise<Result> {
    return new Promise((resolve, reject) => {
      const exit = (code: number | null) => { this.child.off('message', message); reject(new Error(`the child process exited (code ${code}) during ${name} job`)); };
      const message = (m: { ok?: boolean; result?: Result; error?: string; progress?: number }) => {
        if (m.progress !== undefined && m.ok === undefined) { this.onProgress?.(m.progress); return; }
        this.child.off('exit', exit);
        this.child.off('message', message);
        if (m.ok === true) resolve(m.result!); else reject(new Error(`the child's ${name} job failed: ${m.error}`));
      };
      this.child.once('exit', exit);
      this.child.on('message', message);
      this.child.send(job);
    });
  }

  close(): void { if (this.child.connected) this.child.disconnect(); }
}
