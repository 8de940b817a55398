/** What a fresh clone holds that `npm pack` needs to build: everything else is tests and docs. */
export const PACK_SOURCES: readonly string[];
/**
 * Pack the package at `root` into `destination` from a copy of {@link PACK_SOURCES}, without
 * touching the checkout's dist/; resolves to the tarball's path.
 */
export function packFromSources(root: string, destination: string): Promise<string>;
