/** The vector files the generator writes: file name (e.g. `valid.json`) → text. */
export function render(): Record<string, string>;
