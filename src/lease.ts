/**
 * A writer's lease on its key: claiming it (creating the file, or resuming one whose writer is
 * gone), waiting out a holder that stopped a moment ago, keeping it with a heartbeat, and ending it
 * with the end record or an abort.
 * @internal
 * @module
 */

import { randomBytes } from 'node:crypto';
import { formatCrc } from './crc.js';
import { badFormat, corrupt, exists, fileInState, isRetryable, timeout, wrapRedisError } from './errors.js';
import { type FileKeys, Flag, Meta } from './format.js';
import type { ResolvedWriteOptions } from './options.js';
import type { RedisPort } from './redis/port.js';
import { MAX_ATTEMPTS, type Pauses, within, withRetries } from './retry.js';
import { ABORT, COMMIT, CREATE, RESUME, run, runAndWait, TOUCH } from './scripts/index.js';
import type { CommitReply } from './scripts/writer.js';

/** @internal What a claim gives the writer: a new file, or where a resumed one continues. */
export type Claimed =
  /** `used`: Redis's used_memory right after the creation, for a writer under a memory limit. */
  | { readonly kind: 'created'; readonly gen: string; readonly used?: number }
  | {
      readonly kind: 'resumed';
      readonly gen: string;
      readonly chunkSize: number;
      readonly encoding: string;
      readonly chunks: number;
      readonly size: number;
      readonly crc32: string;
      readonly pieces: number;
      readonly last: string;
    };

/** @internal The acknowledged prefix of whole chunks that each heartbeat records. */
export interface Progress {
  readonly bytes: number;
  readonly chunks: number;
  readonly crc32: string;
}

/** @internal */
export class WriterLease {
  /** The random token that names this writer in the hash; every state change checks it. */
  readonly token = randomBytes(8).toString('hex');
  readonly #client: RedisPort;
  readonly #key: string;
  readonly #keys: FileKeys;
  readonly #opts: ResolvedWriteOptions;
  readonly #pauses: Pauses;
  #heartbeat: NodeJS.Timeout | undefined;
  #touching = false;

  constructor(client: RedisPort, key: string, keys: FileKeys, opts: ResolvedWriteOptions, pauses: Pauses) {
    this.#client = client;
    this.#key = key;
    this.#keys = keys;
    this.#opts = opts;
    this.#pauses = pauses;
  }

  /**
   * Claim the key: resume the file there (with `resume`), or create a new one of generation `gen`.
   * Resolves to undefined when the stream was destroyed meanwhile (the pauses were cancelled):
   * nothing was claimed then.
   */
  async claim(gen: string, layout: { chunkSize: number; encoding: string }): Promise<Claimed | undefined> {
    if (this.#opts.resume) {
      const resumed = await this.#resume();
      if (resumed !== 'missing') return resumed;
    }
    const o = this.#opts;
    let waited = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.#pauses.cancelled; attempt++) {
      // The first try assumes there is no file yet (the usual case): one round trip. When there is
      // one, the script answers 'retry', and the next try reads its generation first.
      const first = attempt === 0;
      const reply = await this.#script('creating the file', async () => {
        const { meta } = this.#keys;
        const oldGen = first ? null : ((await this.#client.send(meta, ['HGET', meta, Meta.gen])) as string | null);
        return run(
          this.#client,
          CREATE,
          {
            meta: this.#keys.meta,
            chunks: this.#keys.chunks(gen),
            events: this.#keys.events,
            old: this.#keys.chunks(oldGen ?? gen),
          },
          {
            gen,
            writer: this.token,
            overwrite: o.overwrite ? Flag.yes : Flag.no,
            oldGen: oldGen ?? '',
            chunkSize: layout.chunkSize,
            encoding: layout.encoding,
            contentType: o.contentType,
            metadata: JSON.stringify(o.metadata),
            ttl: o.ttl,
            hbi: o.heartbeatInterval,
            consumers: o.consumers === undefined ? '' : JSON.stringify(o.consumers),
            trim: o.maxRedisMemory === undefined ? Flag.no : Flag.yes,
          },
        );
      });
      switch (reply.status) {
        case 'ok':
          return { kind: 'created', gen, used: reply.used };
        case 'exists':
          throw exists(this.#key, `${fileInState(reply.state)} is stored at this key and \`overwrite\` is off`);
        case 'busy':
          if (!(await this.#waitOut(reply.lapseIn, waited))) return this.#busy();
          waited = true;
          break;
        case 'format':
          throw badFormat(this.#key, `cannot write over this key: ${reply.detail}`);
        // 'retry': the file changed between reading its generation and the script; read again.
      }
    }
    return this.#busy('the key keeps changing under concurrent writers');
  }

  /** Take over a file whose writer is gone, cut back to the whole chunks of its last heartbeat. */
  async #resume(): Promise<Claimed | 'missing' | undefined> {
    let waited = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.#pauses.cancelled; attempt++) {
      const reply = await this.#script('resuming the file', async () => {
        const { meta } = this.#keys;
        const gen = ((await this.#client.send(meta, ['HGET', meta, Meta.gen])) as string | null) ?? '';
        return run(
          this.#client,
          RESUME,
          { meta: this.#keys.meta, chunks: this.#keys.chunks(gen), events: this.#keys.events },
          { gen, writer: this.token, hbi: this.#opts.heartbeatInterval },
        );
      });
      switch (reply.status) {
        case 'missing':
          return 'missing';
        case 'ok':
          return {
            kind: 'resumed',
            gen: reply.gen,
            chunkSize: Number(reply.chunkSize),
            encoding: reply.encoding,
            chunks: Number(reply.chunks),
            size: Number(reply.size),
            crc32: reply.crc32,
            pieces: reply.pieces,
            last: reply.last,
          };
        case 'busy':
          if (!(await this.#waitOut(reply.lapseIn, waited))) return this.#busy();
          waited = true;
          break;
        case 'finished':
          throw exists(this.#key, 'the file is already complete: there is nothing to resume');
        case 'damaged':
          throw corrupt(this.#key, 'cannot resume: Redis lost chunks of this file that it had acknowledged');
        case 'format':
          throw badFormat(this.#key, `cannot resume this key: ${reply.detail}`);
      }
    }
    return this.#busy('the key keeps changing under concurrent writers');
  }

  /** Destroyed meanwhile: nothing was claimed, and the stream says nothing more. Else the key is held. */
  #busy(why = 'another writer is writing this file (its heartbeat goes on)'): undefined {
    if (this.#pauses.cancelled) return undefined;
    throw exists(this.#key, why);
  }

  /**
   * The key is held by a writer whose lease has not lapsed yet. With `overwrite` or `resume`, a
   * writer that died moments ago (a supervisor restarts a crashed process at once) must not block
   * the key: wait until its lease would lapse, once, and try again; a holder that keeps its
   * heartbeat is still there then, and the claim fails.
   */
  async #waitOut(lapseIn: number, waited: boolean): Promise<boolean> {
    if (waited || !(this.#opts.overwrite || this.#opts.resume) || this.#pauses.cancelled) return false;
    await this.#pauses.wait(Math.max(0, lapseIn) + 20);
    return !this.#pauses.cancelled;
  }

  /** Run a script, retrying with backoff while Redis refuses it for a passing reason. */
  #script<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return withRetries(call, {
      retryable: (err) => isRetryable(err, this.#client),
      budgetMs: this.#opts.retryTimeout,
      pauses: this.#pauses,
      wrap: (err) => wrapRedisError(err, this.#key, operation),
    });
  }

  /**
   * Refresh the lease every heartbeat interval, recording `progress()` (where a resume would
   * continue). `lost` is called when the key is no longer this writer's; `failed` when a heartbeat
   * failed for good (see below). The timer never keeps a process alive.
   */
  startHeartbeat(progress: () => Progress, lost: () => void, failed: (err: unknown) => void): void {
    // Since when heartbeats have failed for a passing reason (0: the last one went through).
    let failingSince = 0;
    this.#heartbeat = setInterval(() => {
      if (this.#touching) return;
      this.#touching = true;
      const p = progress();
      run(
        this.#client,
        TOUCH,
        { meta: this.#keys.meta },
        { writer: this.token, size: p.bytes, chunks: p.chunks, crc32: p.crc32 },
      )
        .then(({ held }) => {
          failingSince = 0;
          if (!held && this.#heartbeat) lost();
        })
        .catch((err: unknown) => {
          if (!this.#heartbeat) return;
          // A passing refusal (a failover, a busy or loading server) is tried again at the next
          // beat, for up to retryTimeout, as a piece write is. Anything else ends the writer, a
          // command its client timed out too (a server that stopped answering): a writer waiting
          // for its next bytes has no piece write in flight to fail instead.
          if (isRetryable(err, this.#client)) {
            failingSince ||= Date.now();
            if (Date.now() - failingSince <= this.#opts.retryTimeout) return;
          }
          failed(err);
        })
        .finally(() => (this.#touching = false));
    }, this.#opts.heartbeatInterval);
    this.#heartbeat.unref();
  }

  stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /**
   * Append the end record of generation `gen` after `end.last`, the last of `end.pieces` pieces.
   * With `waitReplicas`, WAIT until that many replicas hold it; the commit is idempotent, so while
   * too few replicas confirm it runs again (and writes again), until `retryTimeout`.
   */
  commit(
    gen: string,
    end: { last: string; pieces: number; size: number; chunks: number; crc32: string; ttl: number },
  ): Promise<CommitReply> {
    const keys = { meta: this.#keys.meta, chunks: this.#keys.chunks(gen), events: this.#keys.events };
    const args = { writer: this.token, ...end };
    const { waitReplicas, waitTimeout, retryTimeout } = this.#opts;
    return withRetries(
      async () => {
        if (waitReplicas === 0) return run(this.#client, COMMIT, keys, args);
        const { reply, replicas } = await runAndWait(this.#client, COMMIT, keys, args, waitReplicas, waitTimeout);
        if (reply.status !== 'ok' || replicas >= waitReplicas) return reply;
        throw new TooFewReplicas(replicas, waitReplicas);
      },
      {
        retryable: (err) => err instanceof TooFewReplicas || isRetryable(err, this.#client),
        budgetMs: retryTimeout,
        pauses: this.#pauses,
        wrap: (err) =>
          err instanceof TooFewReplicas
            ? timeout(
                this.#key,
                `the end record reached ${err.replicas} of ${err.wanted} replicas (the file is complete on the primary)`,
              )
            : wrapRedisError(err, this.#key, 'committing the end record'),
      },
    );
  }

  /**
   * Mark the file aborted, with an abort record after what is stored, keeping `whole` (the prefix
   * of whole chunks, where a resume continues); `lost` when Redis lost acknowledged pieces.
   */
  abort(
    gen: string,
    whole: { bytes: number; chunks: number; crc: number },
    reason: string,
    lost: boolean,
    withinMs: number,
  ): Promise<unknown> {
    // Readers must learn of the abort, but a dead connection must not hold the writer's close up
    // for longer than `withinMs`.
    const done = run(
      this.#client,
      ABORT,
      { meta: this.#keys.meta, chunks: this.#keys.chunks(gen) },
      {
        writer: this.token,
        reason,
        size: whole.bytes,
        chunks: whole.chunks,
        crc32: formatCrc(whole.crc),
        lost: lost ? Flag.yes : Flag.no,
      },
    );
    return within(done, withinMs, () => undefined);
  }
}

/** The end record is stored, but on fewer replicas than `waitReplicas`. */
class TooFewReplicas extends Error {
  constructor(
    readonly replicas: number,
    readonly wanted: number,
  ) {
    super(`${replicas} of ${wanted} replicas`);
  }
}
