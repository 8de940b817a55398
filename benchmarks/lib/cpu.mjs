// CPU time of processes and of the whole machine, read from /proc (Linux), for benchmarks that
// report where the time went: this Node process, each redis-server, and everything else running
// on the machine meanwhile. Reading /proc sends nothing to the servers being measured.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond;
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU time (user + system, all threads) process `pid` has used so far, in ms, or undefined when
 * /proc is not there. Resolution: one clock tick (10 ms at the usual 100 Hz).
 */
export function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

/** CPU time the Redis server behind `redis` has used so far (all its threads), in ms, from INFO cpu. */
export async function infoCpuMs(redis) {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:(\S+)/.exec(info)?.[1]);
  const sys = Number(/used_cpu_sys:(\S+)/.exec(info)?.[1]);
  return (user + sys) * 1000;
}

/**
 * Busy and total CPU time of the whole machine so far (all CPUs, all processes), in ms, or
 * undefined without /proc/stat. Busy is everything but idle and iowait.
 */
export function machineCpuMs() {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
    const t = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already counted in user)
    const total = t.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = t[3] + t[4];
    const k = 1000 / clockTicks();
    return { busy: (total - idle) * k, total: total * k };
  } catch {
    return undefined;
  }
}
