// A tenant's budget: one Durable Object per tenant, a facade over its lease book (run slots
// per lane, with backpressure when a lane is full) and its governance store (the runs'
// figures and facts, and its rollout). One alarm serves both: it expires leases whose runs
// never gave them back and evaluates the rollback conditions shortly after runs.
//
// The object only does bookkeeping: runs load their isolates in the Worker request that
// asked for the slot, never here, so a tenant's runs are not funnelled through one object
// (a Durable Object may have at most 10 dynamic workers in flight; this one has none).
import { DurableObject } from "cloudflare:workers";
import type { ApprovalDecisionSample, GovernanceFigures, GovernanceSample } from "./governance.ts";
import { GovernanceStore } from "./governance-store.ts";
import { LeaseBook } from "./lease-book.ts";
import type { LaneSummary, RunSample } from "./percentiles.ts";
import type { Trip } from "./rollout.ts";
import type { GovernanceNote, Lane, ReserveAnswer, ReserveReport, SlotOutcome, SlotRequest } from "./slot-types.ts";

export class TenantBudget extends DurableObject<Env> {
  private readonly book: LeaseBook;
  private readonly store: GovernanceStore;
  /** When the alarm is set for (undefined: not read yet; null: none), remembered rather than read each time. */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new GovernanceStore(ctx.storage.sql, env.SESSION_LEDGER);
    this.book = new LeaseBook(ctx.storage.sql, {
      refused: (sample) => this.store.addSample(sample),
      leased: () => void this.armAlarm(),
    });
  }

  /** Leases a slot, waits for one, takes a downgrade slot, or says when to retry; and names the phases rolled back. */
  async acquire(request: SlotRequest): Promise<SlotOutcome> {
    const outcome = await this.book.acquire(request);
    const rolledBack = this.store.phasesRolledBack();
    return rolledBack.length > 0 ? { ...outcome, rolledBack } : outcome;
  }

  /**
   * Frees the run's slot (if it still holds one), records its figures, and hands the slot to
   * the next waiter. A finished run's governance facts come along (`note`), so a run that held a
   * slot costs one round trip here after it ends, not two.
   */
  async release(
    runId: string,
    sample: Omit<RunSample, "lane" | "contract" | "outcome"> & { outcome: RunSample["outcome"] },
    note?: GovernanceNote,
  ): Promise<{ released: boolean }> {
    if (note) await this.note(note);
    const lease = this.book.release(runId, sample.totalMs);
    if (!lease) return { released: false };
    this.store.addSample({ ...sample, lane: lease.lane, contract: lease.contract });
    return { released: true };
  }

  /**
   * An isolate's reserve reports the slots it keeps and the runs that used them: their figures
   * and governance facts are recorded, and the lease book takes back or renews the slots.
   */
  async settle(report: ReserveReport): Promise<ReserveAnswer> {
    for (const note of report.notes) await this.note(note);
    for (const sample of report.samples) {
      this.store.addSample(sample);
      if (sample.totalMs !== null) this.book.remember(sample.lane, sample.totalMs);
    }
    return { ...this.book.settle(report), rolledBack: this.store.phasesRolledBack() };
  }

  /** One finished run's governance facts (policy decision, plan and drift, approval gate). */
  async noteRun(sample: GovernanceSample, rollout?: GovernanceNote["rollout"]): Promise<void> {
    await this.note(rollout ? { sample, rollout } : { sample });
  }

  async rolloutState(): Promise<{ rolledBack: Array<Trip & { trippedAt: string }> }> {
    return this.store.rolloutState();
  }

  async reenable(phase: number, actor: string, reason: string, tenant: string): Promise<{ ok: boolean }> {
    return await this.store.reenable(phase, actor, reason, tenant);
  }

  async noteApprovalDecision(sample: ApprovalDecisionSample): Promise<void> {
    this.store.noteApprovalDecision(sample);
  }

  async linkIncident(incidentId: string, runIds: string[], linkedBy: string): Promise<{ linked: number }> {
    return this.store.linkIncident(incidentId, runIds, linkedBy);
  }

  async governance(windowMs: number): Promise<{ all: GovernanceFigures; teams: Record<string, GovernanceFigures> }> {
    return this.store.governance(windowMs);
  }

  /** Whether this tenant has ever run or been governed here (figures are kept SAMPLE_RETENTION_MS), or holds a slot now. */
  async seen(): Promise<boolean> {
    const { inFlight, waiting } = this.book.counts();
    return this.store.holdsAnything() || Object.values(inFlight).some((n) => n > 0) || Object.values(waiting).some((n) => n > 0);
  }

  /** The tenant's figures over the last `windowMs`, with the lanes' slots as they stand. */
  async metrics(
    windowMs: number,
  ): Promise<{ windowMs: number; inFlight: Record<Lane, number>; keptIdle: Record<Lane, number>; waiting: Record<Lane, number>; lanes: LaneSummary[] }> {
    const lanes = this.store.lanes(windowMs);
    return { windowMs, ...this.book.counts(), lanes };
  }

  /** Leases whose run never released them expire here too, so a crashed run's slot comes back without new traffic. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    this.book.expire(Date.now());
    if (Date.now() >= this.store.nextEvaluationAt) await this.store.evaluate(Date.now());
    await this.armAlarm();
  }

  private async note(note: GovernanceNote): Promise<void> {
    if (this.store.note(note)) await this.armAlarm();
  }

  /** Sets the alarm for the earliest lease expiry or evaluation, unless it is already set for then or sooner. */
  private async armAlarm(): Promise<void> {
    const next = Math.min(this.book.earliestExpiry, this.store.nextEvaluationAt);
    if (!Number.isFinite(next)) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= next && this.alarmAt > Date.now()) return;
    this.alarmAt = next;
    await this.ctx.storage.setAlarm(next);
  }
}
