/**
 * `redis-file`: the progress bar, on stderr, only when stderr is a terminal (and not with --quiet),
 * and the counter of the bytes that pass, which feeds it. Its line always fits the terminal's width
 * (see {@link barLine}).
 * @internal
 * @module
 */

import { Transform } from 'node:stream';
import cliProgress from 'cli-progress';
import { barLine, formatBytes, formatDuration, formatShare } from './format.js';

/** Width assumed when stderr does not say (it always does when it is a terminal). */
const DEFAULT_COLUMNS = 80;

let activeBar: ProgressBar | undefined;

/** Stop the bar being drawn, if any, where it stands: a signal or an error ends the command. */
export function stopActiveBar(): void {
  activeBar?.stop(false);
}

/** Whether a bar is being drawn: a line written to stderr must first clear the bar's. */
export function barActive(): boolean {
  return activeBar !== undefined;
}

export class ProgressBar {
  readonly #bar: cliProgress.SingleBar;
  readonly #label: string;
  #total: number | undefined;
  #bytes = 0;
  #done: 'completed' | 'stopped' | undefined;
  readonly #started = Date.now();
  /** Recent (time, bytes) samples: the rate is measured over the last few seconds. */
  #samples: [number, number][] = [];

  constructor(label: string, total: number | undefined) {
    this.#label = label;
    this.#total = total;
    this.#bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: () => this.#format(),
      hideCursor: true,
      // Our own SIGINT handling stops the bar; cli-progress must not add listeners of its own.
      gracefulExit: false,
      // cli-progress then cuts a line at the terminal's width; ours never reaches it.
      linewrap: true,
      fps: 8,
    });
    this.#bar.start(total ?? 0, 0);
    activeBar = this;
  }

  update(bytes: number, total?: number): void {
    if (total !== undefined && total !== this.#total) {
      this.#total = total;
      this.#bar.setTotal(total);
    }
    this.#bytes = bytes;
    const now = Date.now();
    this.#samples.push([now, bytes]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > 3000) this.#samples.shift();
    this.#bar.update(bytes);
  }

  /** Render the last line (a summary when `completed`, else where it stopped) and release the terminal. */
  stop(completed: boolean): void {
    if (activeBar === this) activeBar = undefined;
    if (this.#done !== undefined) return;
    this.#done = completed ? 'completed' : 'stopped';
    this.#bar.stop();
  }

  #rate(): number {
    const first = this.#samples[0];
    const now = Date.now();
    if (!first || now - first[0] < 200) {
      const elapsed = (now - this.#started) / 1000;
      return elapsed > 0 ? this.#bytes / elapsed : 0;
    }
    return (this.#bytes - first[1]) / ((now - first[0]) / 1000);
  }

  #format(): string {
    const seconds = (Date.now() - this.#started) / 1000;
    // The last line: how much, how long, at what average rate.
    const rate = this.#done ? (seconds > 0 ? this.#bytes / seconds : 0) : this.#rate();
    return progressLine(
      { label: this.#label, bytes: this.#bytes, total: this.#total, rate, seconds, done: this.#done },
      process.stderr.columns || DEFAULT_COLUMNS,
    );
  }
}

/** Where a transfer stands, as the bar shows it. */
export interface ProgressState {
  label: string;
  bytes: number;
  /** Known for a regular file or a complete stored one. */
  total: number | undefined;
  /** Bytes per second: recent while running, the average once done. */
  rate: number;
  /** Since the start. */
  seconds: number;
  done?: 'completed' | 'stopped' | undefined;
}

/** The widest a size ("1023.9 KiB"), a rate ("1023.9 KiB/s") and a time ("59m59s") get. */
const BYTES_WIDTH = 10;
const RATE_WIDTH = 12;
const TIME_WIDTH = 6;

/** The bar's line for a state, in at most `columns - 1` characters. */
export function progressLine(s: ProgressState, columns: number): string {
  const speed = `${formatBytes(Math.round(s.rate))}/s`;
  const bytes = formatBytes(s.bytes);
  const summary = `${bytes} in ${formatDuration(s.seconds)}  ${speed}`;
  if (s.total === undefined) {
    if (s.done === 'completed') return barLine(s.label, undefined, summary, columns);
    if (s.done === 'stopped') return barLine(s.label, undefined, `stopped after ${bytes}`, columns);
    const reserve = BYTES_WIDTH + 2 + RATE_WIDTH + 2 + TIME_WIDTH;
    return barLine(s.label, undefined, `${bytes}  ${speed}  ${formatDuration(s.seconds)}`, columns, reserve);
  }
  const fraction = s.total > 0 ? Math.min(1, s.bytes / s.total) : 1;
  const share = formatShare(s.bytes, s.total);
  // The running line's widest figures: the last line keeps the bar it had.
  const reserve = 4 + 2 + share.length + 2 + RATE_WIDTH + 2 + 'ETA '.length + TIME_WIDTH;
  if (s.done === 'completed') return barLine(s.label, fraction, summary, columns, reserve);
  if (s.done === 'stopped') return barLine(s.label, fraction, `stopped after ${bytes}`, columns, reserve);
  const eta = s.rate > 0 ? formatDuration((s.total - s.bytes) / s.rate) : '--';
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  return barLine(s.label, fraction, `${pct}  ${share}  ${speed}  ETA ${eta}`, columns, reserve);
}

/** Whether to show a bar: stderr is a terminal, no --quiet, and stdout (when written) is not the terminal. */
export function wantBar(quiet: boolean | undefined, writesStdout: boolean): boolean {
  return !quiet && process.stderr.isTTY === true && !(writesStdout && process.stdout.isTTY === true);
}

/** Counts the bytes that pass. */
export function counter(count: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      count(chunk.length);
      callback(null, chunk);
    },
  });
}
