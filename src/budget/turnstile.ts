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
};

export const DEFAULT_TURNSTILE: TurnstileLimits = { sharedPerTenant: 1, alonePerTenant: 16, activeWindowMs: 500, maxWaitMs: 10_000 };

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
type TenantState = { active: number; lastActive: number; queues: Record<Lane, Waiter[]> };

export class Turnstile {
  readonly limits: TurnstileLimits;
  readonly #tenants = new Map<string, TenantState>();

  constructor(limits: TurnstileLimits = DEFAULT_TURNSTILE) {
    this.limits = limits;
  }

  /**
   * Waits for `tenant`'s turn on this isolate; never throws. `heldMs`: how long the call
   * already waited for its turn before it got here (in the local supervisor's line); it
   * counts against the longest wait and into the wait reported.
   */
  async enter(tenant: string, lane: Lane, heldMs = 0): Promise<Turn> {
    const arrived = Date.now();
    const state = this.#state(tenant, arrived);
    if (state.active < this.#share(tenant, arrived) && waiting(state) === 0) {
      state.active++;
      return this.#turn(tenant, state, heldMs);
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
    });
    if (timer !== null) clearTimeout(timer);
    const waitedMs = heldMs + Date.now() - arrived;
    if (!admitted) return { ok: false, waitedMs, waiting: waiting(state), share: this.#share(tenant, Date.now()), limits: this.limits };
    // Admitted by the call that left: go on through the timer queue, not straight from its
    // promise, so the runtime gets to read the requests that arrived meanwhile.
    await nextTick();
    return this.#turn(tenant, state, waitedMs);
  }

  /**
   * Between the stages of a call: while other calls are worked on or waiting here, lets the
   * runtime read what arrived meanwhile before this call goes on. The runtime polls for new
   * requests only when no work is ready, and a call's stages (policy, Durable Object round
   * trips, the sandbox) follow one another without any; without a break, requests that
   * arrive during a busy spell (another tenant's, too) are not even read until it ends.
   */
  async yield(): Promise<void> {
    let others = -1;
    for (const state of this.#tenants.values()) {
      others += state.active + waiting(state);
      if (others > 0) return await nextTick();
    }
  }

  /** Calls of `tenant` being worked on and waiting here (for tests and logs). */
  load(tenant: string): { active: number; waiting: number } {
    const state = this.#tenants.get(tenant);
    return { active: state?.active ?? 0, waiting: state ? waiting(state) : 0 };
  }

  #turn(tenant: string, state: TenantState, waitedMs: number): Turn {
    let left = false;
    return {
      ok: true,
      waitedMs,
      leave: () => {
        if (left) return;
        left = true;
        state.active--;
        state.lastActive = Date.now();
        this.#admitWaiting(tenant);
      },
    };
  }

  #state(tenant: string, now: number): TenantState {
    let state = this.#tenants.get(tenant);
    if (!state) {
      state = { active: 0, lastActive: now, queues: { interactive: [], batch: [] } };
      this.#tenants.set(tenant, state);
    }
    state.lastActive = now;
    return state;
  }

  /** How many calls `tenant` may have worked on at once now: fewer while other tenants are active. */
  #share(tenant: string, now: number): number {
    for (const [other, state] of this.#tenants) {
      if (other === tenant) continue;
      if (state.active > 0 || waiting(state) > 0 || now - state.lastActive < this.limits.activeWindowMs) return this.limits.sharedPerTenant;
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
        if (!state || waiting(state) === 0 || state.active >= this.#share(tenant, now)) continue;
        const waiter = (state.queues.interactive.length > 0 ? state.queues.interactive : state.queues.batch).shift() as Waiter;
        waiter.settled = true;
        state.active++;
        waiter.admit();
        progressed = true;
      }
    }
    // Forget tenants that are idle and past the window, so the map stays as small as the active set.
    for (const [tenant, state] of this.#tenants) {
      if (state.active === 0 && waiting(state) === 0 && now - state.lastActive >= this.limits.activeWindowMs) this.#tenants.delete(tenant);
    }
  }
}

/** Resumes through the timer queue: the runtime reads pending I/O (new requests) first. */
function nextTick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function waiting(state: TenantState): number {
  return state.queues.interactive.length + state.queues.batch.length;
}
