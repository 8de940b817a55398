/**
 * Numbers the client adapters and their users share: kept here, in a module that imports nothing,
 * so that the adapters need not import `port.ts`, which imports them.
 * @internal
 * @module
 */

/** The slots of a Redis Cluster. */
export const SLOTS = 16384;

/**
 * The longest a blocking read of the package waits on a connection of its own before Redis answers
 * (a channel receiver's wait for the next file; the followers' shared reads and the memory guard
 * wait 1 s): a timeout for commands on such a connection must be longer.
 */
export const LONGEST_BLOCK_MS = 5000;
