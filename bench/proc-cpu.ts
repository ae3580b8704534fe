/**
 * CPU by process group from /proc (Linux): every process's user + system time, grouped as the Temporal
 * server (`temporal`), PostgreSQL (`postgres`), this process (`bench`: the worker, its activities, the
 * bench's client) and other Node processes (`node`: the API, load generators; or a group named by
 * pid), the rest as `other`.
 * `start()` snapshots, `stop()` gives each group's CPU seconds since (processes that exited in between
 * are not counted). Used to say where a phase's CPU went on the shared cores.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // CLK_TCK on Linux

function snapshot(named: ReadonlyMap<number, string>): Map<number, { group: string; ticks: number }> {
  const out = new Map<number, { group: string; ticks: number }>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d));
  } catch {
    return out; // not Linux
  }
  for (const p of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      continue; // exited
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    const pid = Number(p);
    const group = named.get(pid) ?? (pid === process.pid ? 'bench' : comm.startsWith('temporal') ? 'temporal' : comm.startsWith('postgres') ? 'postgres' : comm.startsWith('node') || comm === 'MainThread' ? 'node' : 'other');
    out.set(pid, { group, ticks });
  }
  return out;
}

/** `named`: processes counted as a group of their own (e.g. figure 3's API process and load generators). */
export function procCpu(named: ReadonlyMap<number, string> = new Map()): { stop: () => Record<string, number> } {
  const before = snapshot(named);
  return {
    stop: () => {
      const after = snapshot(named);
      const seconds: Record<string, number> = {};
      for (const [pid, a] of after) {
        const b = before.get(pid)?.ticks ?? 0;
        seconds[a.group] = (seconds[a.group] ?? 0) + (a.ticks - b) / TICKS_PER_SECOND;
      }
      for (const k of Object.keys(seconds)) seconds[k] = Math.round(seconds[k]! * 100) / 100;
      return seconds;
    },
  };
}
