// The processes below a wrangler process, read from /proc (no `ps` per look): which workerd
// serves its proxy port and which runs the Worker, so the supervisor can tell which one died
// and restart what needs restarting.
import { readdirSync, readFileSync } from "node:fs";

export type ProcessRow = { pid: number; ppid: number; pgrp: number; args: string };
type Row = ProcessRow;

/** Every live process: pid, parent, process group and command line. */
export function processTable(): Row[] {
  const rows: Row[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // the command name is in parentheses and may hold spaces; the fields after it are fixed
      const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (after[0] === "Z") continue;
      const args = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").join(" ");
      rows.push({ pid: Number(name), ppid: Number(after[1]), pgrp: Number(after[2]), args });
    } catch {
      // gone while we looked
    }
  }
  return rows;
}

export type RuntimePids = { proxy: number[]; user: number[] };

/** The pids of `roots` and every process below them. */
export function descendants(rows: readonly Row[], roots: Iterable<number>): Set<number> {
  const below = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of rows) {
      if (below.has(row.ppid) && !below.has(row.pid)) {
        below.add(row.pid);
        grew = true;
      }
    }
  }
  return below;
}

const WORKERD = /workerd\S*\s+serve/;

/** The workerd processes below `root`: wrangler's proxy (serving `proxyPort`) and the user runtime(s). */
export function workerdBelow(root: number, proxyPort: number): RuntimePids {
  const rows = processTable();
  const below = descendants(rows, [root]);
  const workerd = rows.filter((row) => below.has(row.pid) && row.pid !== root && WORKERD.test(row.args));
  const isProxy = (row: Row) => row.args.includes(`entry=127.0.0.1:${proxyPort} `) || row.args.endsWith(`entry=127.0.0.1:${proxyPort}`);
  return { proxy: workerd.filter(isProxy).map((r) => r.pid), user: workerd.filter((r) => !isProxy(r)).map((r) => r.pid) };
}

/** Whether `pid` is (still) a workerd process: a remembered pid may have been reused by another. */
export function isWorkerd(pid: number): boolean {
  try {
    return WORKERD.test(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "));
  } catch {
    return false;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
