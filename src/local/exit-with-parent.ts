// Loaded into each wrangler process the supervisor starts (`node --import`): when the
// supervisor goes away, however it went (even SIGKILL), the wrangler stops too, and its
// workerd processes with it, instead of serving on as an orphan nobody supervises. It is
// asked first (SIGTERM: wrangler stops its workerd on the way out); a wrangler that is still
// there after TERM_GRACE_MS (its shutdown hung once, and it restarted its workerd an hour
// later) has its children and itself killed.
import { readdirSync, readFileSync } from "node:fs";

const TERM_GRACE_MS = 5_000;
const supervisor = process.ppid;
let orphanedAt = 0;

setInterval(() => {
  if (process.ppid === supervisor) return;
  if (orphanedAt === 0) {
    orphanedAt = Date.now();
    process.kill(process.pid, "SIGTERM");
    return;
  }
  if (Date.now() - orphanedAt < TERM_GRACE_MS) return;
  for (const child of childrenOf(process.pid)) {
    try {
      process.kill(child, "SIGKILL");
    } catch {
      // gone already
    }
  }
  process.kill(process.pid, "SIGKILL");
}, 500).unref();

/** The processes whose parent is `pid` (from /proc; the local runtime runs on Linux). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // the fields after the command (which may hold spaces) start after its closing parenthesis
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process ended while it was read
    }
  }
  return children;
}
