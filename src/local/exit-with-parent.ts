// Loaded into each wrangler process the supervisor starts (`node --import`): when the
// supervisor goes away, however it went (even SIGKILL), the wrangler stops too, and its
// workerd processes with it, instead of serving on as an orphan nobody supervises. It is
// asked first (SIGTERM: wrangler stops its workerd on the way out); a wrangler that is still
// there after TERM_GRACE_MS (its shutdown hung once, and it restarted its workerd an hour
// later) has everything below it and itself killed.
import { descendants, killAll, processTable } from "./process-table.ts";

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
  const below = descendants(processTable(), [process.pid]);
  below.delete(process.pid);
  killAll(below);
  process.kill(process.pid, "SIGKILL");
}, 500).unref();
