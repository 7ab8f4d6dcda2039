// A real disk I/O error under one session's ledger (issue 19): the ledger's write-ahead log
// is put on a small ext4 loop device whose backing file is then cut away, so every write to
// it fails with EIO and SQLite answers SQLITE_IOERR_WRITE, as a failing disk would. That
// session answers evidence_unavailable; the runtime stays up; a call of another session in
// flight at that moment completes, and later calls do too. Needs root and loop devices (it
// mounts), so it says why and skips on a machine without them.
import { execSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { rawToolCall } from "../helpers/mcp-http.ts";

const sh = (command: string) => execSync(command, { stdio: "pipe" }).toString();

/** Whether this machine lets the test mount a loop device (root, losetup, mkfs.ext4). */
function canMountLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    sh("command -v losetup && command -v mkfs.ext4 && test -e /dev/loop-control");
    return true;
  } catch {
    return false;
  }
}
const SUPPORTED = canMountLoop();
if (!SUPPORTED) console.log("storage-faults: skipped, this machine does not let the test mount a loop device (needs root, losetup, mkfs.ext4)");

const CODE = "export default () => 1";
const work = mkdtempSync(join(tmpdir(), "agent-exec-io-"));
const image = join(work, "wal.img");
const mountPoint = join(work, "mnt");
let server: LocalServer | undefined;
const cleanups: string[] = [];

afterAll(async () => {
  for (const command of cleanups.reverse()) {
    try {
      sh(command);
    } catch {
      // already gone
    }
  }
  await server?.stop();
  try {
    sh(`umount -l ${mountPoint}`);
  } catch {
    // not mounted
  }
});

describe.skipIf(!SUPPORTED)("a disk I/O error under one session's ledger", () => {
  it("answers evidence_unavailable for that session while the runtime and every other session go on", async () => {
    // 1. A session with a ledger on disk, then the server stopped.
    const first = await startLocalServer({ env: { SANDBOX_PROCESSES: "0" } });
    const stateDir = first.stateDir;
    await rawToolCall(first.mcpUrl, await first.token({ tenant: "acme", actor: "alice", session: "s-disk" }), "analyze_readonly", { code: CODE }, 1);
    const ledgers = sh(`find ${stateDir} -type d -name '*SessionLedger*'`).trim().split("\n")[0] ?? "";
    const database = join(ledgers, readdirSync(ledgers).find((file) => /^[0-9a-f]{64}\.sqlite$/.test(file)) ?? "");
    await first.stop();

    // 2. That ledger's write-ahead log moved onto a loop device of its own.
    sh(`truncate -s 16M ${image} && mkfs.ext4 -q -F ${image} && mkdir -p ${mountPoint} && mount -o loop ${image} ${mountPoint}`);
    copyFileSync(`${database}-wal`, join(mountPoint, "wal"));
    sh(`mount --bind ${join(mountPoint, "wal")} ${database}-wal`);
    cleanups.push(`umount -l ${database}-wal`);

    server = await startLocalServer({ stateDir, env: { SANDBOX_PROCESSES: "0" } });
    const failing = await server.token({ tenant: "acme", actor: "alice", session: "s-disk" });
    const neighbour = await server.token({ tenant: "acme", actor: "bob", session: "s-neighbour" });
    expect(await rawToolCall(server.mcpUrl, failing, "analyze_readonly", { code: CODE }, 2)).toMatchObject({ termination: "completed" });

    // 3. The disk under it fails: the loop device's backing file is cut away, every write is EIO.
    const loop = sh(`losetup -j ${image}`).split(":")[0] ?? "";
    sh(`truncate -s 0 ${image} && losetup -c ${loop}`);

    const slow = rawToolCall(
      server.mcpUrl,
      neighbour,
      "analyze_readonly",
      { code: "export default () => new Promise((resolve) => setTimeout(() => resolve('done'), 800))" },
      3,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await rawToolCall(server.mcpUrl, failing, "analyze_readonly", { code: "export default () => 'must not run'" }, 4);
    expect(refused).toMatchObject({ termination: "failed", error: { code: "evidence_unavailable" } });
    // the other session's call in flight when the disk failed completes
    expect(await slow).toMatchObject({ termination: "completed", result: "done" });
    expect(server.output()).toMatch(/SQLITE_IOERR/);

    const evidence = await fetch(`${server.url}/v1/sessions/s-disk/evidence`, { headers: { authorization: `Bearer ${failing}` } });
    expect(evidence.status).toBe(503);
    expect(await evidence.json()).toMatchObject({ error: { code: "evidence_unavailable" } });

    // the runtime is still up: later calls of the other session complete and its evidence reads
    expect(await rawToolCall(server.mcpUrl, neighbour, "analyze_readonly", { code: CODE }, 5)).toMatchObject({ termination: "completed" });
    expect((await fetch(`${server.url}/v1/sessions/s-neighbour/evidence`, { headers: { authorization: `Bearer ${neighbour}` } })).status).toBe(200);
    // and was never replaced: the failure stayed inside the one ledger
    expect(server.output()).not.toMatch(/wrangler exited|replacing|did not come back|restarting its runtime/);
  });
});
