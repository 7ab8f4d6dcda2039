// Finds the workerd process that runs our Worker under `wrangler dev`, to stop it when a
// run wedges it. wrangler runs two: its ProxyWorker (serving the port we gave it, which
// keeps accepting requests) and the user runtime, which it restarts by itself when it dies.
import { execFileSync } from "node:child_process";

type ProcessRow = { pid: number; ppid: number; args: string };

function processTable(): ProcessRow[] {
  const out = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? "" }));
}

/** The workerd processes below `rootPid` that are not wrangler's ProxyWorker on `proxyPort`. */
export function userRuntimePids(rootPid: number, proxyPort: number): number[] {
  const table = processTable();
  const below = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of table) {
      if (below.has(row.ppid) && !below.has(row.pid)) {
        below.add(row.pid);
        grew = true;
      }
    }
  }
  return table
    .filter((row) => below.has(row.pid) && row.pid !== rootPid && /workerd\S*\s+serve/.test(row.args) && !row.args.includes(`entry=127.0.0.1:${proxyPort}`))
    .map((row) => row.pid);
}

export function killProcesses(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
