/**
 * `redis-file --help`, each command's help and --version.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, run } from './helpers/cli.js';

describe('redis-file --help', () => {
  it('describes every command, the connection and the exit codes, with examples', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.toString();
    expect(help).toMatch(/^Usage: redis-file \[options\] \[command\]/);
    for (const command of [
      'put',
      'get',
      'cat',
      'stat',
      'ls',
      'rm',
      'expire',
      'mv',
      'send',
      'receive',
      'close',
      'rm-channel',
    ])
      expect(help).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(help).toContain('REDIS_URL');
    expect(help).toContain('Examples:');
    expect(help).toContain('Exit codes:');
  });

  it('gives each command a help of its own, with the defaults', async () => {
    const r = await run(['put', '--help']);
    expect(r.code).toBe(0);
    const help = r.stdout.toString();
    expect(help).toContain('Usage: redis-file put [options] <path|-> <key>');
    expect(help).toContain('--chunk-size <bytes>');
    expect(help).toContain('(default: 256k)');
    expect(help).toContain('--url <url>');
    const get = (await run(['help', 'get'])).stdout.toString();
    expect(get).toContain('--wait-for-create <ms>');
    expect(get).toContain('--no-follow');
  });

  it('prints the version and which CRC-32 implementation runs', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    // @node-rs/crc32 is installed with the package here: it loads on this platform.
    expect(r.stdout.toString().trim()).toBe(`${pkg.version} (CRC-32 by @node-rs/crc32)`);
  });
});
