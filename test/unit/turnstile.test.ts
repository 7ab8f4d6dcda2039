// The turnstile that shares one isolate's thread between tenants: a tenant alone gets its
// wide share, tenants side by side get the narrow one, waiting calls go in order
// (interactive before batch), and a call past the longest wait is refused, never lost.
import { describe, expect, it } from "vitest";
import { type TakenTurn, type Turn, Turnstile } from "../../src/budget/index.ts";

// No resting by default here: the tests of resting set `pace` themselves.
const limits = { sharedPerTenant: 1, alonePerTenant: 3, activeWindowMs: 200, maxWaitMs: 2_000, maxPauseMs: 1_000, pace: 0 };
type Admitted = TakenTurn;
/** Notes `label` when the turn comes, and hands it on. */
const noting =
  (order: string[], label: string) =>
  (turn: Turn): Admitted => {
    order.push(label);
    return admitted(turn);
  };
const admitted = (turn: Turn): Admitted => {
  if (!turn.ok) throw new Error("expected a turn");
  return turn;
};
/** Settles after every pending timer of up to `ms` has fired. */
const later = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe("turnstile", () => {
  it("lets a tenant alone work on its wide share, and the next call in when one leaves", async () => {
    const gate = new Turnstile(limits);
    const first = await Promise.all([1, 2, 3].map(() => gate.enter("t-alone", "interactive")));
    expect(first.every((turn) => turn.ok && turn.waitedMs === 0)).toBe(true);
    let fourth: Turn | undefined;
    void gate.enter("t-alone", "interactive").then((turn) => (fourth = turn));
    await later();
    expect(fourth).toBeUndefined();
    expect(gate.load("t-alone")).toEqual({ active: 3, waiting: 1 });
    admitted(first[0] as Turn).leave();
    admitted(first[0] as Turn).leave(); // a second leave changes nothing
    await later();
    expect(fourth?.ok).toBe(true);
    expect(gate.load("t-alone")).toEqual({ active: 3, waiting: 0 });
  });

  it("holds a busy tenant to the narrow share while another is active, and lets the other in at once", async () => {
    const gate = new Turnstile(limits);
    const busy = admitted(await gate.enter("t-busy", "interactive"));
    // the other tenant arrives: it is let in at once, and the busy tenant's next call waits
    const quiet = admitted(await gate.enter("t-quiet", "interactive"));
    expect(quiet.waitedMs).toBe(0);
    const order: string[] = [];
    const next = [1, 2].map((n) => gate.enter("t-busy", "interactive").then(noting(order, `busy-${n}`)));
    await later();
    expect(order).toEqual([]);
    expect(gate.load("t-busy")).toEqual({ active: 1, waiting: 2 });
    // the busy tenant's call leaves: its next one goes in, in the order they came; still one at a time
    busy.leave();
    const second = await next[0];
    expect(order).toEqual(["busy-1"]);
    expect(gate.load("t-busy")).toEqual({ active: 1, waiting: 1 });
    quiet.leave();
    second?.leave();
    (await next[1])?.leave();
    expect(order).toEqual(["busy-1", "busy-2"]);
  });

  it("lets a tenant's waiting interactive calls in before its batch work", async () => {
    const gate = new Turnstile({ ...limits, alonePerTenant: 1 });
    const running = admitted(await gate.enter("t-lanes", "batch"));
    const order: string[] = [];
    const batch = gate.enter("t-lanes", "batch").then(noting(order, "batch"));
    const interactive = gate.enter("t-lanes", "interactive").then(noting(order, "interactive"));
    await later();
    running.leave();
    (await interactive).leave();
    (await batch).leave();
    expect(order).toEqual(["interactive", "batch"]);
  });

  it("refuses a call that waited past the longest wait, and forgets it", async () => {
    const gate = new Turnstile({ ...limits, alonePerTenant: 1, maxWaitMs: 50 });
    const holder = admitted(await gate.enter("t-slow", "interactive"));
    const refused = await gate.enter("t-slow", "interactive");
    expect(refused).toMatchObject({ ok: false, waiting: 0, limits: { maxWaitMs: 50 } });
    expect(refused.waitedMs).toBeGreaterThanOrEqual(40);
    expect(gate.load("t-slow")).toEqual({ active: 1, waiting: 0 });
    holder.leave();
    expect(gate.load("t-slow")).toEqual({ active: 0, waiting: 0 });
    expect((await gate.enter("t-slow", "interactive")).ok).toBe(true);
  });

  it("yields only while other calls are worked on or waiting", async () => {
    const gate = new Turnstile(limits);
    const one = admitted(await gate.enter("t-yield", "interactive"));
    let yielded = false;
    const alone = gate.yield("t-yield", "interactive").then(() => (yielded = true));
    await Promise.resolve();
    expect(yielded).toBe(true); // nothing else here: no detour through the timers
    await alone;
    const two = admitted(await gate.enter("t-other", "interactive"));
    yielded = false;
    const shared = gate.yield("t-yield", "interactive").then(() => (yielded = true));
    await Promise.resolve();
    expect(yielded).toBe(false);
    await shared;
    expect(yielded).toBe(true);
    one.leave();
    two.leave();
  });

  it("makes a backlogged tenant's call stand aside at a break while a light tenant's call is worked on", async () => {
    const gate = new Turnstile(limits);
    const light = admitted(await gate.enter("t-light", "interactive"));
    // t-heavy is backlogged: its second call has to wait for its turn
    const heavy = admitted(await gate.enter("t-heavy", "interactive"));
    const queued = gate.enter("t-heavy", "interactive");
    expect(gate.load("t-heavy")).toEqual({ active: 1, waiting: 1 });
    let resumed = false;
    const pause = gate.yield("t-heavy", "interactive").then((ms) => {
      resumed = true;
      return ms;
    });
    // the light tenant's call goes through its breaks at once (through the timer queue) and is never held
    expect(await gate.yield("t-light", "interactive")).toBe(0);
    await later(30);
    expect(resumed).toBe(false);
    light.leave();
    const pausedMs = await pause;
    expect(resumed).toBe(true);
    expect(pausedMs).toBeGreaterThanOrEqual(25);
    expect(pausedMs).toBeLessThan(limits.maxPauseMs);
    // nothing to give way to any more: the heavy tenant's breaks cost no pause
    expect(await gate.yield("t-heavy", "interactive")).toBe(0);
    heavy.leave();
    admitted(await queued).leave();
  });

  it("holds a pause no longer than maxPauseMs, and never when pauses are off", async () => {
    const capped = new Turnstile({ ...limits, maxPauseMs: 40 });
    // held by the supervisor before it got here: backlogged as well
    const heavy = admitted(await capped.enter("t-heavy", "interactive", 15));
    const light = admitted(await capped.enter("t-light", "interactive"));
    const pausedMs = await capped.yield("t-heavy", "interactive");
    expect(pausedMs).toBeGreaterThanOrEqual(35);
    expect(pausedMs).toBeLessThan(500);
    heavy.leave();
    light.leave();

    const off = new Turnstile({ ...limits, maxPauseMs: 0 });
    const heavyOff = admitted(await off.enter("t-heavy", "interactive", 15));
    const lightOff = admitted(await off.enter("t-light", "interactive"));
    expect(await off.yield("t-heavy", "interactive")).toBe(0);
    heavyOff.leave();
    lightOff.leave();
  });

  it("keeps a tenant backlogged while its calls still wait, past the window; and an interactive call gives way to interactive calls only", async () => {
    const gate = new Turnstile({ ...limits, activeWindowMs: 30, maxPauseMs: 60 });
    const light = admitted(await gate.enter("t-light", "batch"));
    const heavy = admitted(await gate.enter("t-heavy", "interactive"));
    const queued = gate.enter("t-heavy", "interactive");
    await later(50); // past the window, but a call still waits: still backlogged
    // the light tenant's only call is batch work: an interactive call does not give way to it
    expect(await gate.yield("t-heavy", "interactive")).toBe(0);
    const lightInteractive = admitted(await gate.enter("t-light-2", "interactive"));
    expect(await gate.yield("t-heavy", "interactive")).toBeGreaterThanOrEqual(50);
    // a call that may not pause (after its sandbox answered) never does
    expect(await gate.yield("t-heavy", "interactive", { pause: false })).toBe(0);
    lightInteractive.leave();
    light.leave();
    heavy.leave();
    admitted(await queued).leave();
  });

  it("does not pause between two backlogged tenants, or once the backlog is past the window", async () => {
    const gate = new Turnstile({ ...limits, activeWindowMs: 60 });
    const a = admitted(await gate.enter("t-a", "interactive", 5));
    const b = admitted(await gate.enter("t-b", "interactive", 5));
    expect(await gate.yield("t-a", "interactive")).toBe(0);
    b.leave();
    const light = admitted(await gate.enter("t-light", "interactive"));
    await later(80); // t-a's backlog is older than the window: it counts as light again
    expect(await gate.yield("t-a", "interactive")).toBe(0);
    a.leave();
    light.leave();
  });

  it("rests a backlogged tenant's call pace times its last stage while a light tenant was active lately, within maxPauseMs", async () => {
    const gate = new Turnstile({ ...limits, pace: 1, maxPauseMs: 80 });
    // the light tenant's call came and went: it is active lately, but no call of it is worked on
    admitted(await gate.enter("t-light", "interactive")).leave();
    const heavy = admitted(await gate.enter("t-heavy", "interactive", 5));
    const rested = await gate.yield("t-heavy", "interactive", { stageMs: 30 });
    expect(rested).toBeGreaterThanOrEqual(25);
    expect(rested).toBeLessThan(500);
    // a long stage rests no longer than maxPauseMs
    const capped = await gate.yield("t-heavy", "interactive", { stageMs: 5_000 });
    expect(capped).toBeGreaterThanOrEqual(75);
    expect(capped).toBeLessThan(500);
    // no rest when the call may not pause, and never for the light tenant itself
    expect(await gate.yield("t-heavy", "interactive", { stageMs: 30, pause: false })).toBe(0);
    const light = admitted(await gate.enter("t-light", "interactive"));
    expect(await gate.yield("t-light", "interactive", { stageMs: 30 })).toBe(0);
    light.leave();
    // once the light tenant has been away longer than the window, the heavy tenant (held again: still backlogged) goes on at full speed
    await later(250);
    const heldAgain = admitted(await gate.enter("t-heavy", "interactive", 5));
    expect(await gate.yield("t-heavy", "interactive", { stageMs: 30 })).toBe(0);
    heldAgain.leave();
    heavy.leave();

    const off = new Turnstile({ ...limits, pace: 0 });
    admitted(await off.enter("t-light", "interactive")).leave();
    const heavyOff = admitted(await off.enter("t-heavy", "interactive", 5));
    expect(await off.yield("t-heavy", "interactive", { stageMs: 30 })).toBe(0);
    heavyOff.leave();
  });

  it("rests an interactive call for light interactive calls only, and keeps rest and standing aside within one maxPauseMs", async () => {
    const gate = new Turnstile({ ...limits, pace: 1, maxPauseMs: 60 });
    const lightBatch = admitted(await gate.enter("t-light", "batch"));
    const heavy = admitted(await gate.enter("t-heavy", "interactive", 5));
    // the light tenant only does batch work: interactive calls do not rest for it, batch calls do
    expect(await gate.yield("t-heavy", "interactive", { stageMs: 30 })).toBe(0);
    lightBatch.leave(); // active lately, nothing worked on: a batch call rests, it does not stand aside
    const heavyBatch = admitted(await gate.enter("t-heavy-batch", "batch", 5));
    expect(await gate.yield("t-heavy-batch", "batch", { stageMs: 20 })).toBeGreaterThanOrEqual(15);
    expect(await gate.yield("t-heavy", "interactive", { stageMs: 30 })).toBe(0);
    heavyBatch.leave();
    // a light interactive call is worked on: the heavy call rests the whole bound and then does not stand aside too
    const light = admitted(await gate.enter("t-light-2", "interactive"));
    const started = Date.now();
    const pausedMs = await gate.yield("t-heavy", "interactive", { stageMs: 1_000 });
    expect(pausedMs).toBeGreaterThanOrEqual(55);
    // not the rest and then a full stand-aside on top of it (that would be 120 ms)
    expect(Date.now() - started).toBeLessThan(100);
    light.leave();
    heavy.leave();
  });
});
