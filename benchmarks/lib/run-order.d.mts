/**
 * The order in which repetition `rep` (0, 1, …) runs `n` contenders: their indexes, in the rows of a
 * Williams design (a Latin square balanced for carry-over).
 */
export function runOrder(n: number, rep: number): number[];
