// `npm pack` of the package as a fresh clone would pack it, without touching the checkout's dist/.
//
// The pack runs in a copy of what a clone holds that the build needs (the sources, the manifest,
// the tsconfigs, the build script), with the checkout's node_modules linked in for the build's tsc:
// its prepack builds into the copy. So the check starts from no dist/ (a tarball that ships no
// code fails it), and it can run beside anything that reads the checkout's dist/ (the type tests,
// the benchmarks, the CLI tests), which a build there would remove and write again under them.

import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What a fresh clone holds that `npm pack` needs to build: everything else is tests and docs. */
export const PACK_SOURCES = [
  'package.json',
  'README.md',
  'LICENSE',
  'tsconfig.json',
  'tsconfig.build.json',
  'tsconfig.cjs.json',
  'scripts',
  'src',
];

/**
 * Pack the package at `root` into `destination` from a copy of {@link PACK_SOURCES}; resolves to
 * the tarball's path. The copy is removed afterwards.
 */
export async function packFromSources(root, destination) {
  const clone = await mkdtemp(join(destination, 'clone-'));
  try {
    for (const name of PACK_SOURCES) await cp(join(root, name), join(clone, name), { recursive: true });
    await symlink(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir');
    await new Promise((resolve, reject) => {
      const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
      const argv = ['pack', '--pack-destination', destination, '--loglevel=error'];
      execFile(npm, argv, { cwd: clone, maxBuffer: 64 * 1024 * 1024, timeout: 180_000 }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const output = `${stdout}${stderr}`.trim().split('\n').slice(-60).join('\n');
        reject(new Error(`\`npm ${argv.join(' ')}\` in a copy of ${root} failed:\n${output}`));
      });
    });
  } finally {
    await rm(clone, { recursive: true, force: true });
  }
  const tarballs = (await readdir(destination)).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.length} tarballs in ${destination}`);
  return join(destination, tarballs[0]);
}
