// The local supervisor: what `npm start` runs beside the runtimes because open-source
// workerd enforces no CPU limit and nothing restarts a process that dies. Three parts:
//   - the front door on PORT (front-door.ts);
//   - the watchdog the sandbox router reports overdue runs to (watchdog.ts);
//   - runtime loss: every runtime process is looked at every tick and replaced when it died
//     (runtime-process.ts); what the main runtime held is answered, and requests wait for it.
import type { AddressInfo } from "node:net";
import { FrontDoor, type Problem } from "./front-door.ts";
import type { Loss, RuntimeProcess } from "./runtime-process.ts";
import { Watchdog } from "./watchdog.ts";

const TICK_MS = 100;

export type SupervisorOptions = {
  port: number;
  /** The token the sandbox router presents (from the main runtime's .dev.vars). */
  watchdogToken: string;
  log: (line: string) => void;
};

type Runtimes = { main: RuntimeProcess; sandboxes: readonly RuntimeProcess[] };

export class Supervisor {
  readonly #door: FrontDoor;
  readonly #watchdog: Watchdog;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: SupervisorOptions) {
    this.#door = new FrontDoor({ port: options.port, log: options.log });
    this.#watchdog = new Watchdog({ token: options.watchdogToken, log: options.log });
  }

  /** The front door on PORT; throws (EADDRINUSE) before anything else is started. */
  listen(): Promise<AddressInfo> {
    return this.#door.listen();
  }

  /** The watchdog's endpoint for the sandbox router, on a free loopback port. */
  listenWatchdog(): Promise<string> {
    return this.#watchdog.listen();
  }

  /** Takes charge of the runtime processes (requests wait for the main one until then) and looks at them every tick. */
  attach(runtimes: Runtimes): void {
    this.#watchdog.watch(runtimes.sandboxes);
    this.#door.serve(runtimes.main);
    this.#timer = setInterval(() => {
      for (const runtime of [runtimes.main, ...runtimes.sandboxes]) void runtime.check();
    }, TICK_MS);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Set while the contracts or policy on disk are invalid: every request is answered with it. */
  get broken(): Problem | null {
    return this.#door.broken;
  }

  set broken(problem: Problem | null) {
    this.#door.broken = problem;
  }

  /** The main runtime went away: what was in it is answered now rather than left to hang. */
  mainLost(loss: Loss): void {
    this.#door.mainLost(loss);
  }

  /** The main runtime serves (again): requests waiting for it go in. */
  mainUp(): void {
    this.#door.mainUp();
  }

  /** Restarts the main runtime once the requests in it are answered; requests that arrive meanwhile wait. */
  reloadMain(restart: () => Promise<void>): Promise<void> {
    return this.#door.reloadMain(restart);
  }
}
