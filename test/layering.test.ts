/**
 * The layering of src/ stays one-way: each module imports only from its own layer or lower ones.
 * From the bottom: what everything uses (errors, CRC-32, the client, retries), the storage format,
 * the options and the Lua scripts, the streams, the operations on files and channels, the public
 * API (index.ts), and the CLI on top, which reaches the library only through index.ts. The import
 * lines of every src/**\/*.ts are read and checked against the layers listed here; a new module
 * must be placed in one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/**
 * The layers, bottom first. A member is a file, or a folder (ending in `/`) with everything in it,
 * relative to src/.
 */
const LAYERS: readonly { readonly name: string; readonly members: readonly string[] }[] = [
  {
    name: 'foundation',
    members: [
      'errors.ts',
      'crc.ts',
      'redis/',
      'blocking-reads.ts',
      'retry.ts',
      'progress.ts',
      'consumed.ts',
      'window-size.ts',
      'shared-listener.ts',
    ],
  },
  { name: 'format', members: ['format.ts', 'format/'] },
  { name: 'options and scripts', members: ['options.ts', 'options/', 'scripts/'] },
  {
    name: 'streams',
    members: [
      'read-stream.ts',
      'write-stream.ts',
      'chunk-window.ts',
      'chunker.ts',
      'sequence.ts',
      'lease.ts',
      'memory-guard.ts',
      'file-watch.ts',
      'file-stat.ts',
      'consumer.ts',
      'lines.ts',
      'upload.ts',
    ],
  },
  { name: 'operations', members: ['manage.ts', 'list.ts', 'channel.ts', 'channel/'] },
  { name: 'public API', members: ['index.ts'] },
  { name: 'CLI', members: ['cli/'] },
];

/** The layer of a module (a path relative to src/, with `/`), or -1 when it is in none. */
function layerOf(module: string): number {
  return LAYERS.findIndex((layer) =>
    layer.members.some((m) => (m.endsWith('/') ? module.startsWith(m) : module === m)),
  );
}

/** Every .ts file under src/, relative to it, with `/`. */
function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path).split('\\').join('/')] : [];
  });
}

/**
 * The package modules a module's text imports (static `import … from`, `export … from`, side-effect
 * `import '…'` and dynamic `import('…')`), as paths relative to src/; imports of packages are left out.
 */
function importsOf(module: string, text: string): string[] {
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => posix.normalize(posix.join(posix.dirname(module), s)).replace(/\.js$/, '.ts'));
}

/** What breaks the layering: an import of a higher layer, or a CLI module reaching past index.ts. */
function violations(modules: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [module, text] of modules) {
    const own = layerOf(module);
    for (const target of importsOf(module, text)) {
      const theirs = layerOf(target);
      if (theirs > own) {
        found.push(`${module} (${LAYERS[own]!.name}) imports ${target} (${LAYERS[theirs]!.name})`);
      }
      if (module.startsWith('cli/') && !target.startsWith('cli/') && target !== 'index.ts') {
        found.push(`${module} imports ${target}: the CLI uses the library through index.ts only`);
      }
    }
  }
  return found;
}

const MODULES = new Map(sourceFiles().map((m) => [m, readFileSync(join(SRC, m), 'utf8')] as const));

describe('layering of src/', () => {
  it('every module is in exactly one layer', () => {
    const unplaced = [...MODULES.keys()].filter((m) => layerOf(m) === -1);
    expect(unplaced).toEqual([]);
    const twice = [...MODULES.keys()].filter(
      (m) => LAYERS.filter((l) => l.members.some((x) => (x.endsWith('/') ? m.startsWith(x) : m === x))).length > 1,
    );
    expect(twice).toEqual([]);
  });

  it('every relative import names a module of src/', () => {
    const missing = [...MODULES].flatMap(([m, text]) =>
      importsOf(m, text)
        .filter((target) => !MODULES.has(target))
        .map((target) => `${m} imports ${target}`),
    );
    expect(missing).toEqual([]);
    // The reading of import lines finds the imports there are (a reader that finds none passes all).
    expect(importsOf('channel/receive.ts', MODULES.get('channel/receive.ts')!)).toEqual(
      expect.arrayContaining(['redis/port.ts', 'format.ts', 'read-stream.ts', 'scripts/index.ts', 'channel/log.ts']),
    );
  });

  it('no module imports from a higher layer, and the CLI reaches the library only through index.ts', () => {
    expect(violations(MODULES)).toEqual([]);
  });

  it('the check finds an import of a higher layer, over several lines, and a CLI module past index.ts', () => {
    const bad = new Map([
      ['format/keys.ts', "import {\n  RedisReadStream,\n} from '../read-stream.js';\n"],
      ['read-stream.ts', "import type { remove } from './manage.js';\n"],
      ['options/common.ts', "const m = await import('../cli/runtime.js');\n"],
      ['cli/put.ts', "import { createRedisWriteStream } from '../write-stream.js';\n"],
      ['list.ts', "import { fileKeys } from './format.js';\nexport { stat } from './manage.js';\n"],
    ]);
    expect(violations(bad)).toEqual([
      'format/keys.ts (format) imports read-stream.ts (streams)',
      'read-stream.ts (streams) imports manage.ts (operations)',
      'options/common.ts (options and scripts) imports cli/runtime.ts (CLI)',
      'cli/put.ts imports write-stream.ts: the CLI uses the library through index.ts only',
    ]);
  });
});
