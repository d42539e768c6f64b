import cliProgress from 'cli-progress';

/** Seconds as a human duration: `45s`, `3m 20s`, `2h 05m`; `?` when unknown (no rate yet). */
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m ${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** Where a long job stands: `done` of `total` units (records, rows), and what it is doing now. */
export interface ProgressUpdate {
  done: number;
  total: number;
  /** A few words on the current step, e.g. `reading lt.src.population.citizen`. */
  step?: string;
}

export interface ProgressOptions {
  /** What the bar is about, e.g. `rebuild ngdb`. */
  title: string;
  /** Unit of `done`/`total` in the output, e.g. `records`. */
  unit: string;
  /** Where it goes; default process.stdout. A TTY gets a bar, anything else periodic log lines. */
  stream?: NodeJS.WriteStream;
  /** Seconds between log lines when not on a TTY. Default 10. */
  logEverySeconds?: number;
  /** Clock in milliseconds (tests pass their own). Default Date.now. */
  now?: () => number;
}

/**
 * Progress of one long operator command (rebuild, replay, snapshot): on a terminal a bar with the rate and the
 * ETA as human durations; when stdout is not a terminal (a log file, CI) one plain line every
 * `logEverySeconds`, and always one at the end. Rate and ETA are measured from the first update.
 */
export class Progress {
  private readonly options: ProgressOptions;
  private readonly stream: NodeJS.WriteStream;
  private readonly now: () => number;
  private readonly bar: cliProgress.SingleBar | null;
  private startedAt: number | null = null;
  private startedDone = 0;
  private lastLogAt = 0;
  private last: ProgressUpdate = { done: 0, total: 0 };

  constructor(options: ProgressOptions) {
    this.options = options;
    this.stream = options.stream ?? process.stdout;
    this.now = options.now ?? Date.now;
    this.bar = this.stream.isTTY
      ? new cliProgress.SingleBar(
          {
            stream: this.stream,
            format: `${options.title} [{bar}] {percentage}% {value}/{total} ${options.unit} · {rate}/s · ETA {eta_human} · {step}`,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  }

  /** Units per second since the first update; 0 until something was done. */
  rate(): number {
    if (this.startedAt === null) return 0;
    const seconds = (this.now() - this.startedAt) / 1000;
    return seconds > 0 ? (this.last.done - this.startedDone) / seconds : 0;
  }

  /** Seconds until `total` at the current rate; Infinity while the rate is 0. */
  etaSeconds(): number {
    const rate = this.rate();
    const left = Math.max(0, this.last.total - this.last.done);
    if (left === 0) return 0;
    return rate > 0 ? left / rate : Infinity;
  }

  /** A one-line summary of where the job stands (what the log lines print). */
  line(): string {
    const { done, total, step } = this.last;
    const percent = total > 0 ? Math.floor((100 * Math.min(done, total)) / total) : 100;
    return (
      `${this.options.title}: ${done}/${total} ${this.options.unit} (${percent}%), ` +
      `${Math.round(this.rate())} ${this.options.unit}/s, ETA ${humanDuration(this.etaSeconds())}` +
      (step ? ` · ${step}` : '')
    );
  }

  update(update: ProgressUpdate): void {
    const now = this.now();
    if (this.startedAt === null) {
      this.startedAt = now;
      this.startedDone = update.done;
      this.lastLogAt = now;
      if (this.bar) this.bar.start(update.total, update.done, this.payload(update));
    }
    this.last = update;
    if (this.bar) {
      this.bar.setTotal(update.total);
      this.bar.update(Math.min(update.done, update.total), this.payload(update));
      return;
    }
    const every = (this.options.logEverySeconds ?? 10) * 1000;
    if (now - this.lastLogAt >= every) {
      this.lastLogAt = now;
      this.stream.write(`${this.line()}\n`);
    }
  }

  /** Stops the bar (or writes the last log line). */
  finish(): void {
    if (this.bar) {
      this.bar.stop();
      return;
    }
    if (this.startedAt !== null) this.stream.write(`${this.line()}\n`);
  }

  private payload(update: ProgressUpdate): Record<string, string> {
    return {
      rate: String(Math.round(this.rate())),
      eta_human: humanDuration(this.etaSeconds()),
      step: update.step ?? '',
    };
  }
}
