/** A client that answers INFO: an ioredis `Redis`. */
export interface InfoClient {
  info(section: 'memory'): Promise<string>;
}
/** used_memory in the text of `INFO memory`, NaN when it is not there. */
export function parseUsedMemory(info: unknown): number;
/** Redis's used_memory now, through `client`. */
export function usedMemory(client: InfoClient): Promise<number>;
/** Sample used_memory every `everyMs` ms until `stop()`, which resolves to the peak and the sample count. */
export function sampleUsedMemory(
  client: InfoClient,
  everyMs?: number,
): { stop(): Promise<{ peak: number; samples: number }> };
