// A one-line training progress bar on stderr: step, loss, lr, tokens/s, ETA. On a terminal it
// redraws in place; otherwise (CI, a pipe) it prints a plain line every `every` steps.

export interface ProgressRow { step: number; total: number; loss: number; lr: number; tokensPerSec: number; etaSec: number; extra?: string }

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export class ProgressBar {
  private readonly tty: boolean;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly every = 10, readonly enabled = true) {
    this.tty = Boolean(stream.isTTY);
  }

  update(r: ProgressRow): void {
    if (!this.enabled) return;
    const width = 24, filled = Math.round((width * r.step) / Math.max(1, r.total));
    const bar = '█'.repeat(filled) + '·'.repeat(width - filled);
    const text = `${bar} ${r.step}/${r.total} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} ` +
      `${Math.round(r.tokensPerSec)} tok/s ETA ${fmtTime(r.etaSec)}${r.extra ? ' ' + r.extra : ''}`;
    if (this.tty) this.stream.write(`\r\x1b[2K${text}`);
    else if (r.step % this.every === 0 || r.step === r.total) this.stream.write(text + '\n');
  }

  done(): void { if (this.enabled && this.tty) this.stream.write('\n'); }
}
