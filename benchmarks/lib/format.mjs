// Number and markup helpers shared by the report generators.

/**
 * A figure with 3 significant digits or so: 1234 -> "1234", 12.34 -> "12.3", 1.234 -> "1.23", and
 * 2 for what would round to 0.0x or 0.00: 0.0036 -> "0.0036".
 */
export const fmt = (x, digits = 2) => {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  if (abs > 0 && abs < 0.1 && digits === 2) return x.toPrecision(2);
  return x.toFixed(digits);
};

export const times = (x) => `${fmt(x)}x`;

/** Text for SVG and HTML attributes and content. */
export const esc = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A Markdown table. */
export function table(head, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
