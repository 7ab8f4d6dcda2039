import { describe, expect, it } from "vitest";
import { newStateDir, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";

describe("local persistence", () => {
  it("keeps a session's evidence across a server restart and appends to the same ledger", async () => {
    const stateDir = newStateDir();
    const identity = { tenant: "acme", actor: "alice", session: "s-restart" };

    const first = await startLocalServer({ stateDir });
    let firstRecords: unknown[];
    try {
      const session = await connectClient(CLIENT_KINDS[1], first.mcpUrl, await first.token(identity));
      const result = await session.callTool("analyze_readonly", { code: "export default () => 'before restart'" });
      expect(result.structuredContent?.result).toBe("before restart");
      await session.close();
      const response = await fetch(`${first.url}/v1/sessions/s-restart/evidence`, { headers: { authorization: `Bearer ${await first.token(identity)}` } });
      firstRecords = ((await response.json()) as { records: unknown[] }).records;
      expect(firstRecords).toHaveLength(2);
    } finally {
      await first.stop();
    }

    const second = await startLocalServer({ stateDir });
    try {
      const token = await second.token(identity);
      const session = await connectClient(CLIENT_KINDS[0], second.mcpUrl, token);
      await session.callTool("analyze_readonly", { code: "export default () => 'after restart'" });
      await session.close();
      const response = await fetch(`${second.url}/v1/sessions/s-restart/evidence`, { headers: { authorization: `Bearer ${token}` } });
      const records = ((await response.json()) as { records: Array<{ seq: number }> }).records;
      expect(records).toHaveLength(4);
      expect(records.slice(0, 2)).toEqual(firstRecords);
      expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    } finally {
      await second.stop();
    }
  }, 180_000);
});
