// Loaded into each wrangler process the supervisor starts (`node --import`): when the
// supervisor goes away, however it went (even SIGKILL), the wrangler stops too, and stops its
// workerd processes on the way out, instead of serving on as an orphan nobody supervises.
const supervisor = process.ppid;
setInterval(() => {
  if (process.ppid !== supervisor) process.kill(process.pid, "SIGTERM");
}, 500).unref();

export {};
