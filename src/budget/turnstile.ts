// One isolate's thread, shared fairly between tenants. An isolate runs every request it is
// given on one thread, and a platform call is mostly CPU (policy, signing, evidence, the
// sandbox), so a tenant with many calls in flight takes the thread from everyone else on
// it, whatever its budget allows across the platform. The turnstile lets each tenant work
// on a few calls at a time while other tenants are active here, and on more while it is
// alone. A call beyond its tenant's share waits its turn (interactive before batch, tenants
// in turn); past the longest wait it is refused as `overloaded`, and never lost.
//
// Holding calls back is not enough on its own. The runtime (workerd's event loop) polls its
// sockets only when no work is ready, so a chain of ready work (one call's stages, then the
// next waiting call let in by the one leaving) keeps every newly arrived request unread,
// however little it needs: measured locally, a trivial `GET /` took 1.1-1.4 s while 100
// calls waited here, and 55 ms once admission and each stage went through the timer queue.
//
// Nor are breaks alone: a call's stages cannot be interrupted, so a light tenant's call still
// waits behind a stage of the backlogged tenant's, at each of its own stages and before the
// runtime even reads it. So at a stage break a call of a backlogged tenant (one whose calls
// wait for their turn, or had to lately) pauses
// while a call of a tenant that is not backlogged is being worked on here, up to
// `maxPauseMs` per break: the light tenant's call runs its stages back to back, and the
// heavy tenant goes on in the gaps between them. "Worked on" includes a call's I/O waits,
// which the isolate cannot tell from its work; the pause bound is what that costs at most.
//
// Standing aside helps a light call once it is read, not while it waits to be: a backlogged
// tenant's stages follow one another back to back, so the thread is always busy when the
// light tenant's next request arrives. So while a light tenant has been active here lately,
// a backlogged tenant's call also rests at each break, `pace` times as long as its last
// stage took in wall time (within the same `maxPauseMs`): its stages up to the sandbox's
// run go at about 1 / (1 + pace) of their speed, and the light tenant's next request more
// often finds the thread free.
import type { Lane } from "./tenant-budget.ts";

export type TurnstileLimits = {
  /** Calls of one tenant worked on at once while another tenant is active on this isolate. */
  sharedPerTenant: number;
  /** Calls of one tenant worked on at once while it is the only tenant active here. */
  alonePerTenant: number;
  /** How long after its last call here ended a tenant still counts as active. */
  activeWindowMs: number;
  /** The longest a call waits for its turn before it is refused. */
  maxWaitMs: number;
  /** The longest a backlogged tenant's call pauses at one stage break for other tenants' calls, resting and standing aside together (0: never). */
  maxPauseMs: number;
  /** How long a backlogged tenant's call rests at a break per ms its last stage took, while a tenant that is not backlogged was active here lately (0: never). */
  pace: number;
};

export const DEFAULT_TURNSTILE: TurnstileLimits = {
  sharedPerTenant: 1,
  alonePerTenant: 16,
  activeWindowMs: 500,
  maxWaitMs: 10_000,
  maxPauseMs: 100,
  pace: 1,
};

/** How many of a call's stage breaks may pause (src/intent/submit-task.ts: before intake, the budget, the boot and the run). */
export const PAUSING_BREAKS = 4;

/** A stage break: how long the call's stage since its last break took, and whether it may pause at all. */
export type StageBreak = { stageMs?: number; pause?: boolean };

/** A call's turn: `leave()` exactly once when its work is done; or why it got none. */
export type Turn = TakenTurn | RefusedTurn;
/** A turn given: the call may be worked on now. */
export type TakenTurn = { ok: true; waitedMs: number; leave: () => void };
/** No turn within the longest wait: the call is refused as `overloaded`. */
export type RefusedTurn = {
  ok: false;
  waitedMs: number;
  waiting: number;
  /** The tenant's share when it was refused: `sharedPerTenant` while others were active here, else `alonePerTenant`. */
  share: number;
  limits: TurnstileLimits;
};

type Waiter = { settled: boolean; admit: () => void };
/**
 * `active`: calls worked on, per lane. `lastActive`: when a call of the lane last came or left.
 * `backloggedAt`: when a call of the tenant last had to wait for its turn (0: never).
 */
type TenantState = { active: Record<Lane, number>; lastActive: Record<Lane, number>; backloggedAt: number; queues: Record<Lane, Waiter[]> };
/** A backlogged tenant's call paused at a stage break. */
type Paused = { tenant: string; lane: Lane; resume: () => void };

export class Turnstile {
  readonly limits: TurnstileLimits;
  readonly #tenants = new Map<string, TenantState>();
  #paused: Paused[] = [];

  constructor(limits: TurnstileLimits = DEFAULT_TURNSTILE) {
    this.limits = limits;
  }

  /**
   * Waits for `tenant`'s turn on this isolate; never throws. `heldMs`: how long the call
   * already waited for its turn before it got here; it counts against the longest wait and
   * into the wait reported.
   */
  async enter(tenant: string, lane: Lane, heldMs = 0): Promise<Turn> {
    const arrived = Date.now();
    const state = this.#state(tenant, lane, arrived);
    if (heldMs > 0) state.backloggedAt = arrived;
    if (working(state) < this.#share(tenant, arrived) && waiting(state) === 0) {
      state.active[lane]++;
      return this.#turn(tenant, lane, state, heldMs);
    }
    const maxWaitMs = Math.max(0, this.limits.maxWaitMs - heldMs);
    const waiter: Waiter = { settled: false, admit: () => {} };
    let timer: ReturnType<typeof setTimeout> | null = null;
    // The timer is also this request's own pending I/O: a request waiting only on a promise
    // that another request resolves would be cancelled by the runtime as hung.
    const admitted = await new Promise<boolean>((resolve) => {
      waiter.admit = () => resolve(true);
      timer = setTimeout(() => {
        if (waiter.settled) return;
        waiter.settled = true;
        const queue = state.queues[lane];
        queue.splice(queue.indexOf(waiter), 1);
        resolve(false);
      }, maxWaitMs);
      state.queues[lane].push(waiter);
      state.backloggedAt = arrived;
    });
    if (timer !== null) clearTimeout(timer);
    const waitedMs = heldMs + Date.now() - arrived;
    if (!admitted) return { ok: false, waitedMs, waiting: waiting(state), share: this.#share(tenant, Date.now()), limits: this.limits };
    // Admitted by the call that left: go on through the timer queue, not straight from its
    // promise, so the runtime gets to read the requests that arrived meanwhile.
    await nextTick();
    return this.#turn(tenant, lane, state, waitedMs);
  }

  /**
   * Between the stages of a call of `tenant`: while other calls are worked on or waiting
   * here, lets the runtime read what arrived meanwhile before this call goes on. The runtime
   * polls for new requests only when no work is ready, and a call's stages (policy, Durable
   * Object round trips, the sandbox) follow one another without any; without a break,
   * requests that arrive during a busy spell (another tenant's, too) are not even read until
   * it ends.
   *
   * Unless `pause` is false, a backlogged tenant's call then pauses, in all at most
   * `maxPauseMs`, for tenants that are not backlogged (of its own lane or a more urgent one:
   * an interactive call gives way to interactive calls only): it rests `pace` × `stageMs`
   * while one was active here lately, and stands aside while a call of one is worked on.
   * Returns how long it paused.
   */
  async yield(tenant: string, lane: Lane, { stageMs = 0, pause = true }: StageBreak = {}): Promise<number> {
    const started = Date.now();
    let paused = false;
    const restMs = Math.min(this.limits.maxPauseMs, Math.round(stageMs * this.limits.pace));
    if (pause && restMs > 0 && this.#mustRest(tenant, lane, started)) {
      await sleep(restMs);
      paused = true;
    }
    const leftMs = this.limits.maxPauseMs - (Date.now() - started);
    if (pause && leftMs > 0 && this.#mustPause(tenant, lane, Date.now())) {
      await this.#standAside(tenant, lane, leftMs);
      await nextTick();
      paused = true;
    }
    if (paused) return Date.now() - started;
    let others = -1;
    for (const state of this.#tenants.values()) {
      others += working(state) + waiting(state);
      if (others > 0) {
        await nextTick();
        return 0;
      }
    }
    return 0;
  }

  /** Waits until no call that `tenant`'s call gives way to is worked on here any more, at most `limitMs`. */
  #standAside(tenant: string, lane: Lane, limitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const entry: Paused = { tenant, lane, resume: () => {} };
      // The timer is also this call's own pending I/O while it waits on other requests.
      const timer = setTimeout(() => entry.resume(), limitMs);
      entry.resume = () => {
        clearTimeout(timer);
        this.#paused = this.#paused.filter((other) => other !== entry);
        resolve();
      };
      this.#paused.push(entry);
    });
  }

  /** Calls of `tenant` being worked on and waiting here (for tests and logs). */
  load(tenant: string): { active: number; waiting: number } {
    const state = this.#tenants.get(tenant);
    return { active: state ? working(state) : 0, waiting: state ? waiting(state) : 0 };
  }

  #turn(tenant: string, lane: Lane, state: TenantState, waitedMs: number): Turn {
    let left = false;
    return {
      ok: true,
      waitedMs,
      leave: () => {
        if (left) return;
        left = true;
        state.active[lane]--;
        state.lastActive[lane] = Date.now();
        this.#admitWaiting(tenant);
        this.#resumePaused();
      },
    };
  }

  #state(tenant: string, lane: Lane, now: number): TenantState {
    let state = this.#tenants.get(tenant);
    if (!state) {
      state = { active: { interactive: 0, batch: 0 }, lastActive: { interactive: 0, batch: 0 }, backloggedAt: 0, queues: { interactive: [], batch: [] } };
      this.#tenants.set(tenant, state);
    }
    state.lastActive[lane] = now;
    return state;
  }

  /** True while `tenant` is backlogged and a call that its call of `lane` gives way to is being worked on here. */
  #mustPause(tenant: string, lane: Lane, now: number): boolean {
    return this.#givesWay(tenant, now, (state) => working(state, lane) > 0);
  }

  /** True while `tenant` is backlogged and a tenant that its call of `lane` gives way to was active here lately (or is now). */
  #mustRest(tenant: string, lane: Lane, now: number): boolean {
    if (this.limits.pace === 0) return false;
    return this.#givesWay(tenant, now, (state) => now - lastActive(state, lane) < this.limits.activeWindowMs || working(state, lane) > 0);
  }

  /** True when `tenant` is backlogged and some other tenant, not backlogged, is `busy`. */
  #givesWay(tenant: string, now: number, busy: (state: TenantState) => boolean): boolean {
    const mine = this.#tenants.get(tenant);
    if (this.limits.maxPauseMs === 0 || !mine || !this.#backlogged(mine, now)) return false;
    for (const [other, state] of this.#tenants) if (other !== tenant && busy(state) && !this.#backlogged(state, now)) return true;
    return false;
  }

  #backlogged(state: TenantState, now: number): boolean {
    return waiting(state) > 0 || (state.backloggedAt > 0 && now - state.backloggedAt < this.limits.activeWindowMs);
  }

  /** Lets paused calls go on once no call they give way to is worked on here any more. */
  #resumePaused(): void {
    const now = Date.now();
    for (const entry of [...this.#paused]) if (!this.#mustPause(entry.tenant, entry.lane, now)) entry.resume();
  }

  /** How many calls `tenant` may have worked on at once now: fewer while other tenants are active. */
  #share(tenant: string, now: number): number {
    for (const [other, state] of this.#tenants) {
      if (other === tenant) continue;
      if (working(state) > 0 || waiting(state) > 0 || now - lastActive(state) < this.limits.activeWindowMs) return this.limits.sharedPerTenant;
    }
    return this.limits.alonePerTenant;
  }

  /** Lets in waiting calls, the tenant that just left a slot last, tenants in turn, interactive first. */
  #admitWaiting(leaving: string): void {
    const now = Date.now();
    const order = [...this.#tenants.keys()];
    const start = (order.indexOf(leaving) + 1) % order.length;
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (let i = 0; i < order.length; i++) {
        const tenant = order[(start + i) % order.length] as string;
        const state = this.#tenants.get(tenant);
        if (!state || waiting(state) === 0 || working(state) >= this.#share(tenant, now)) continue;
        const lane: Lane = state.queues.interactive.length > 0 ? "interactive" : "batch";
        const waiter = state.queues[lane].shift() as Waiter;
        waiter.settled = true;
        state.active[lane]++;
        waiter.admit();
        progressed = true;
      }
    }
    // Forget tenants that are idle and past the window, so the map stays as small as the active set.
    for (const [tenant, state] of this.#tenants) {
      if (working(state) === 0 && waiting(state) === 0 && now - lastActive(state) >= this.limits.activeWindowMs) this.#tenants.delete(tenant);
    }
  }
}

/** Resumes after `ms`, through the timer queue: the runtime reads pending I/O (new requests) first. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const nextTick = () => sleep(0);

/** The lanes whose calls a call of `lane` gives way to: an interactive call to interactive calls only, batch work to both. */
const GIVES_WAY_TO: Record<Lane, readonly Lane[]> = { interactive: ["interactive"], batch: ["interactive", "batch"] };

/** Calls of the tenant worked on here: of both lanes, or of those a call of `givingWay` gives way to. */
function working(state: TenantState, givingWay: Lane = "batch"): number {
  return GIVES_WAY_TO[givingWay].reduce((sum, lane) => sum + state.active[lane], 0);
}

/** When a call of the tenant last came or left: of either lane, or of those a call of `givingWay` gives way to. */
function lastActive(state: TenantState, givingWay: Lane = "batch"): number {
  return Math.max(...GIVES_WAY_TO[givingWay].map((lane) => state.lastActive[lane]));
}

function waiting(state: TenantState): number {
  return state.queues.interactive.length + state.queues.batch.length;
}
