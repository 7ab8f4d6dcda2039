// Turns on the shared runtime, end to end through the local supervisor and the Worker: a
// tenant's call beyond its share waits (and its wait is in the evidence), another tenant is
// let in at once, and a call that waits past the longest wait is refused as `overloaded`,
// with its start and finish recorded like any other refusal. A backlogged tenant's call stands
// aside at its stage breaks while another tenant's call is worked on, rests at them while another
// tenant was active lately, and says so in its evidence.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { rawToolCall, sessionRecords } from "../helpers/mcp-http.ts";

const MAX_WAIT_MS = 600;
const MAX_PAUSE_MS = 150;
let server: LocalServer;

beforeAll(async () => {
  const probe = readOnlyContract("turn-probe", "turn_probe", { limits: { wallMs: 5_000 }, backpressure: { mode: "reject" } });
  const tenant = {
    phases: [1],
    roles: ["auditor"],
    budget: { interactive: { maxInFlight: 8, queueMax: 0 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 0 },
    teams: { all: { members: ["*"], grants: [{ contract: "turn-probe", maxDataClass: "internal" }] } },
  };
  server = await startLocalServer({
    env: {
      ...dataDirs({ "turn-probe": probe }, { tenants: { "t-one": tenant, "t-two": tenant } }),
      TURN_ALONE_PER_TENANT: "1",
      TURN_SHARED_PER_TENANT: "1",
      TURN_MAX_WAIT_MS: String(MAX_WAIT_MS),
      TURN_MAX_PAUSE_MS: String(MAX_PAUSE_MS),
      // a light tenant counts as active lately for longer than a held call waits (TURN_PACE stays 1:
      // rests as long as its stages, far below the stand-aside test's figure)
      TURN_ACTIVE_WINDOW_MS: "3000",
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

const SLEEP = "export default (i) => new Promise((r) => setTimeout(() => r(i.ms), i.ms))";
type Envelope = { runId: string; termination: string; error?: { code: string; message: string; retryAfterMs?: number } };
type EvidenceRecord = {
  kind: string;
  runId: string;
  budget?: { turnWaitMs?: number };
  latencyMs?: { queue?: number; total?: number; paused?: number };
  error?: { code: string };
};
type Who = { tenant: string; actor: string; session: string };
let ids = 0;
const call = (token: string, ms: number) => rawToolCall<Envelope>(server.mcpUrl, token, "turn_probe", { code: SLEEP, input: { ms } }, ++ids);
const records = async (who: Who, runId: string) =>
  (await sessionRecords<EvidenceRecord>(server.url, await server.token({ ...who, roles: ["auditor"] }), who.session)).filter((r) => r.runId === runId);
const settled = () => new Promise((resolve) => setTimeout(resolve, 150));
/** A call of `who` made while another of its calls (sleeping `holdMs`) holds the tenant's one turn; `meanwhile` runs just before it is made. */
async function callBehind(who: Who, holdMs: number, meanwhile?: () => Promise<unknown>): Promise<{ holder: Envelope; queued: Envelope }> {
  const token = await server.token(who);
  const holder = call(token, holdMs);
  await settled();
  await meanwhile?.();
  const queued = await call(token, 1);
  return { holder: await holder, queued };
}

describe("turns on the shared runtime", () => {
  it("makes a tenant's second call wait for its first, and records the wait", async () => {
    const who = { tenant: "t-one", actor: "a", session: "s-turn-wait" };
    const { holder: first, queued: second } = await callBehind(who, 400);
    expect(first.termination).toBe("completed");
    expect(second.termination).toBe("completed");
    const [started, finished] = await records(who, second.runId);
    expect(started?.budget?.turnWaitMs).toBeGreaterThanOrEqual(100);
    expect(finished?.latencyMs?.queue).toBeGreaterThanOrEqual(started?.budget?.turnWaitMs ?? Number.POSITIVE_INFINITY);
  });

  it("lets another tenant in at once while the first tenant's calls wait", async () => {
    const one = await server.token({ tenant: "t-one", actor: "a", session: "s-turn-busy" });
    const two = await server.token({ tenant: "t-two", actor: "b", session: "s-turn-other" });
    const order: string[] = [];
    const noted = (label: string) => (answer: Envelope) => {
      order.push(label);
      return answer;
    };
    const slow = call(one, 1_000).then(noted("one"));
    await settled();
    const waiting = call(one, 1).then(noted("one-waiting"));
    const other = await call(two, 1);
    order.push("two");
    expect(other.termination).toBe("completed");
    await Promise.all([slow, waiting]);
    expect(order[0]).toBe("two");
  });

  it("makes a backlogged tenant's call stand aside while another tenant's call runs, and records the pause", async () => {
    const busy = { tenant: "t-one", actor: "a", session: "s-turn-backlog" };
    const light = { tenant: "t-two", actor: "b", session: "s-turn-light" };
    const busyToken = await server.token(busy);
    const first = call(busyToken, 300);
    await settled();
    // the light tenant's long call is worked on while the busy tenant's next call, held for its turn, runs
    const lightCall = call(await server.token(light), 1_500);
    const held = call(busyToken, 1);
    expect((await first).termination).toBe("completed");
    const heldAnswer = await held;
    expect(heldAnswer.termination).toBe("completed");
    const lightAnswer = await lightCall;
    expect(lightAnswer.termination).toBe("completed");
    const [heldStart, heldFinish] = await records(busy, heldAnswer.runId);
    expect(heldStart?.budget?.turnWaitMs).toBeGreaterThan(0);
    // each break it reached while the light call ran cost it up to MAX_PAUSE_MS
    expect(heldFinish?.latencyMs?.paused).toBeGreaterThanOrEqual(MAX_PAUSE_MS - 20);
    // the light tenant never waited and never stood aside
    const [, lightFinish] = await records(light, lightAnswer.runId);
    expect(lightFinish?.kind).toBe("run.finished");
    expect(lightFinish?.latencyMs?.paused).toBeUndefined();
  });

  it("makes a backlogged tenant's call rest at its breaks while another tenant was active lately, and records it", async () => {
    const busy = { tenant: "t-one", actor: "a", session: "s-turn-rest" };
    const light = { tenant: "t-two", actor: "b", session: "s-turn-rest-light" };
    const lightToken = await server.token(light);
    // the light tenant's call is over before the busy tenant's next call is even sent: nothing to stand aside for
    let lightAnswer: Envelope | undefined;
    const { holder, queued } = await callBehind(busy, 550, async () => {
      lightAnswer = await call(lightToken, 1);
    });
    expect(holder.termination).toBe("completed");
    expect(lightAnswer?.termination).toBe("completed");
    expect(queued.termination).toBe("completed");
    const [queuedStart, queuedFinish] = await records(busy, queued.runId);
    expect(queuedStart?.budget?.turnWaitMs).toBeGreaterThan(0);
    expect(queuedFinish?.latencyMs?.paused).toBeGreaterThan(0);
    expect(queuedFinish?.latencyMs?.paused).toBeLessThanOrEqual(queuedFinish?.latencyMs?.total ?? 0);
    const [, lightFinish] = await records(light, lightAnswer?.runId ?? "");
    expect(lightFinish?.latencyMs?.paused).toBeUndefined();
  });

  it("refuses a call that waited past the longest wait as overloaded, and records it", async () => {
    const who = { tenant: "t-one", actor: "a", session: "s-turn-over" };
    const { holder, queued: refused } = await callBehind(who, 2_000);
    expect(refused).toMatchObject({ termination: "denied", error: { code: "overloaded", retryAfterMs: expect.any(Number) } });
    expect(holder.termination).toBe("completed");
    const [started, finished] = await records(who, refused.runId);
    expect(started?.kind).toBe("run.started");
    expect(finished).toMatchObject({ kind: "run.finished", error: { code: "overloaded" } });
    // the wait in the supervisor's line counts: the call was refused once the whole wait was used up
    // (and only once: it is not waited for again in full inside the runtime)
    expect(finished?.latencyMs?.queue).toBeGreaterThanOrEqual(MAX_WAIT_MS - 50);
    expect(finished?.latencyMs?.queue).toBeLessThan(2 * MAX_WAIT_MS - 150);
  });
});
