#!/usr/bin/env node
// Builds the package: ESM (+ .d.ts) to dist/esm and CommonJS (+ .d.ts) to dist/cjs.
// Each output folder gets its own package.json so Node and TypeScript read the
// .js / .d.ts files in it with the right module format, whatever the root
// package.json "type" says.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');

const builds = [
  { project: 'tsconfig.build.json', outDir: 'dist/esm', type: 'module' },
  { project: 'tsconfig.cjs.json', outDir: 'dist/cjs', type: 'commonjs' },
];

rmSync(join(root, 'dist'), { recursive: true, force: true });

for (const { project, outDir, type } of builds) {
  console.log(`build: tsc -p ${project} -> ${outDir}`);
  const result = spawnSync(process.execPath, [tsc, '-p', project], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`build: tsc -p ${project} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
  mkdirSync(join(root, outDir), { recursive: true });
  writeFileSync(join(root, outDir, 'package.json'), JSON.stringify({ type }, null, 2) + '\n');
}

// The `redis-file` command (package.json "bin", ESM only): executable, so that it also runs as
// ./dist/esm/cli/main.js and through `npm link` (npm sets the mode itself when it installs a package).
const cli = join(root, 'dist', 'esm', 'cli', 'main.js');
if (existsSync(cli)) chmodSync(cli, 0o755);

console.log('build: done');
