// The export of a large session (issue 19): a session of 50,000 records (25,000 runs
// appended through POST /__bench/ledger as the pipeline appends them) exported as range
// bundles of at most 20,000 records, the bundles verified offline as one chain, and the
// server's memory meanwhile: the resident size of each workerd process below the server,
// sampled every 25 ms, before the export (the session written, nothing exporting) and at
// its peak during each range. The same run exports a 2,000-record range as the small
// baseline: the peak over the baseline is what a range costs, not what the session holds.
import { readFileSync } from "node:fs";
import { verifySeries } from "../src/evidence/verify-bundle.ts";
import { descendants, isWorkerd, processTable } from "../src/local/process-table.ts";
import { startLocalServer } from "../test/helpers/local-server.ts";

const RECORDS = Number(process.env.BENCH_EXPORT_RECORDS ?? 50_000);
const RANGE = 20_000;
const FILL_PER_REQUEST = 2_500;

/** Resident set size of a process in KiB (VmRSS), or 0 once it is gone. */
function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples every workerd below `root` until stopped; the peak per process. */
function sampler(root: number): { stop: () => Map<number, number> } {
  const pids = [...descendants(processTable(), [root])].filter(isWorkerd);
  const peak = new Map<number, number>(pids.map((pid) => [pid, rssKiB(pid)]));
  const timer = setInterval(() => {
    for (const pid of pids) peak.set(pid, Math.max(peak.get(pid) ?? 0, rssKiB(pid)));
  }, 25);
  return {
    stop: () => {
      clearInterval(timer);
      for (const pid of pids) peak.set(pid, Math.max(peak.get(pid) ?? 0, rssKiB(pid)));
      return peak;
    },
  };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

export async function exportBench(): Promise<void> {
  // SANDBOX_PROCESSES=0: one workerd holds the Worker and every Durable Object, as deployed
  const server = await startLocalServer({ env: { LOCAL_BENCH: "1", SANDBOX_PROCESSES: "0" } });
  try {
    const session = `bench-export-${Date.now()}`;
    const token = await server.token({ tenant: "acme", actor: "auditor", session, ttlSeconds: 3600 });
    const fillStarted = performance.now();
    for (let written = 0; written < RECORDS; written += FILL_PER_REQUEST * 2) {
      const runs = Math.min(FILL_PER_REQUEST, (RECORDS - written) / 2);
      const response = await fetch(`${server.url}/__bench/ledger`, { method: "POST", body: JSON.stringify({ tenant: "acme", session, runs }) });
      if (!response.ok) throw new Error(`filling the ledger answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    }
    const fillMs = performance.now() - fillStarted;
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();

    const exportRange = async (from: number, to: number) => {
      const watch = sampler(server.pid);
      const started = performance.now();
      const response = await fetch(`${server.url}/v1/sessions/${session}/export?from=${from}&to=${to}`, { headers: { authorization: `Bearer ${token}` } });
      const text = await response.text();
      const ms = performance.now() - started;
      const peak = watch.stop();
      if (!response.ok) throw new Error(`export ${from}-${to} answered ${response.status}: ${text.slice(0, 300)}`);
      return { from, to, ms, bytes: text.length, bundle: JSON.parse(text) as unknown, peak };
    };

    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = sampler(server.pid);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = idle.stop();
    const small = await exportRange(1, 2_000);
    const ranges = [];
    for (let from = 1; from <= RECORDS; from += RANGE) ranges.push(await exportRange(from, Math.min(RECORDS, from + RANGE - 1)));

    const verifyStarted = performance.now();
    const report = await verifySeries(
      ranges.map((range) => range.bundle),
      { jwks },
    );
    const verifyMs = performance.now() - verifyStarted;
    if (!report.ok || !report.complete) throw new Error(`the series does not verify as the whole session: ${JSON.stringify(report.problems.slice(0, 3))}`);

    // the workerd that holds the Worker and the ledger: the one whose memory moved most
    const main = [...before.keys()].sort((a, b) => (small.peak.get(b) ?? 0) - (before.get(b) ?? 0) - ((small.peak.get(a) ?? 0) - (before.get(a) ?? 0)))[0] ?? 0;
    const rss = (peak: Map<number, number>) => peak.get(main) ?? 0;
    const lines = [
      "",
      `export of a ${RECORDS.toLocaleString("en")}-record session in range bundles (SANDBOX_PROCESSES=0: the Worker and every Durable Object in one workerd, pid ${main}):`,
      `  written through the ledger in ${(fillMs / 1000).toFixed(1)} s (${Math.round(RECORDS / (fillMs / 1000))} records/s)`,
      `  workerd resident before exporting: ${mib(rss(before))}`,
      `  range 1-2,000 (the small baseline): ${small.ms.toFixed(0)} ms, ${(small.bytes / 1024 / 1024).toFixed(1)} MiB, peak ${mib(rss(small.peak))} (+${mib(rss(small.peak) - rss(before))})`,
      ...ranges.map(
        (r) =>
          `  range ${r.from.toLocaleString("en")}-${r.to.toLocaleString("en")}: ${r.ms.toFixed(0)} ms, ${(r.bytes / 1024 / 1024).toFixed(1)} MiB, peak ${mib(rss(r.peak))} (+${mib(rss(r.peak) - rss(before))})`,
      ),
      `  the ${ranges.length} bundles verified offline as one chain (complete, ${report.records.toLocaleString("en")} records, ${report.runs.total.toLocaleString("en")} runs) in ${verifyMs.toFixed(0)} ms`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await exportBench();
