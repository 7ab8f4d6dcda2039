// The wrangler configurations `npm start` runs, derived from wrangler.toml (the one the
// Worker deploys with) so the two cannot drift: the main runtime (the Worker, with the local
// sandbox router in front of its sandbox binding) and one sandbox runtime per sandbox process
// (the SandboxHost with its loader, egress gateway and capabilities, reaching the main
// runtime's Durable Objects through the dev registry). Secrets go to a `.dev.vars` file beside
// each configuration, in a folder only this user can read: never on a command line.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "smol-toml";
import { ROOT } from "./dev-keys.ts";

/** One wrangler dev process to run: its worker name and configuration, where it keeps its state. */
export type RuntimeSpec = { name: string; role: "main" | "sandbox"; configPath: string; persistTo: string };

export type RuntimeConfigs = { main: RuntimeSpec; sandboxes: RuntimeSpec[]; registry: string };

type RawConfig = {
  name: string;
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  vars?: Record<string, string>;
  services?: Array<Record<string, string>>;
  worker_loaders?: Array<{ binding: string }>;
  durable_objects?: { bindings: Array<{ name: string; class_name: string; script_name?: string }> };
  [key: string]: unknown;
};

/** The Worker's deployed configuration. */
export function deployedConfig(): RawConfig {
  return parse(readFileSync(join(ROOT, "wrangler.toml"), "utf8")) as unknown as RawConfig;
}

/** The sandbox process's worker name: the Worker's own name and its index. */
export const sandboxName = (worker: string, index: number) => `${worker}-sandbox-${index}`;

export function writeRuntimeConfigs(options: {
  /** Private to this server: the configurations, their secrets, the dev registry and the sandboxes' scratch state. */
  runtimeDir: string;
  /** Durable Object storage of the main runtime. */
  persistTo: string;
  sandboxes: number;
  /** Every variable the main runtime gets beside wrangler.toml's [vars] (secrets included). */
  mainVars: Record<string, string>;
  /** What the sandbox runtimes get: what the gateway and capabilities read, no signing keys. */
  sandboxVars: Record<string, string>;
}): RuntimeConfigs {
  const { runtimeDir } = options;
  rmSync(runtimeDir, { recursive: true, force: true });
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  chmodSync(runtimeDir, 0o700);
  const deployed = deployedConfig();
  const common = {
    compatibility_date: deployed.compatibility_date,
    compatibility_flags: deployed.compatibility_flags ?? [],
    vars: deployed.vars ?? {},
    // the local runtimes report no usage to anyone
    send_metrics: false,
  };
  const sandboxes = Array.from({ length: options.sandboxes }, (_, index) => sandboxName(deployed.name, index));

  // The main runtime: the deployed Worker behind a local entry that adds the sandbox router;
  // [build] is left out: the supervisor builds the catalog and the viewer and rebuilds on change.
  const { build: _build, main: _main, ...rest } = deployed;
  const main: RawConfig = {
    ...rest,
    ...common,
    main: join(ROOT, "src/local/runtime/main-worker.ts"),
    services: [
      ...(deployed.services ?? []),
      // without sandbox processes the Worker reaches its own SandboxHost entrypoint, as deployed
      ...(sandboxes.length > 0 ? [{ binding: "SANDBOX_HOST", service: deployed.name, entrypoint: "SandboxRouter" }] : []),
      ...sandboxes.map((service, index) => ({ binding: `SANDBOX_${index}`, service, entrypoint: "SandboxHost" })),
    ],
  };
  const mainSpec = writeRuntime(runtimeDir, "main", deployed.name, main, options.mainVars, options.persistTo);

  const sandboxSpecs = sandboxes.map((name) => {
    const config: RawConfig = {
      name,
      ...common,
      main: join(ROOT, "src/local/runtime/sandbox-worker.ts"),
      worker_loaders: deployed.worker_loaders ?? [],
      // the gateway and the capabilities record into, and read from, the main runtime's objects
      durable_objects: {
        bindings: (deployed.durable_objects?.bindings ?? []).map((b) => ({ name: b.name, class_name: b.class_name, script_name: deployed.name })),
      },
    };
    return writeRuntime(runtimeDir, "sandbox", name, config, options.sandboxVars, join(runtimeDir, name, "state"));
  });
  return { main: mainSpec, sandboxes: sandboxSpecs, registry: join(runtimeDir, "registry") };
}

function writeRuntime(
  runtimeDir: string,
  role: RuntimeSpec["role"],
  name: string,
  config: RawConfig,
  vars: Record<string, string>,
  persistTo: string,
): RuntimeSpec {
  const dir = join(runtimeDir, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const configPath = join(dir, "wrangler.json");
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  writeVars({ configPath }, vars);
  return { name, role, configPath, persistTo };
}

/** Writes a runtime's private `.dev.vars` (read by wrangler when the process starts). */
export function writeVars(spec: Pick<RuntimeSpec, "configPath">, vars: Record<string, string>): void {
  writeFileSync(join(dirname(spec.configPath), ".dev.vars"), devVars(vars), { mode: 0o600 });
}

/**
 * A `.dev.vars` file wrangler reads back exactly: each value quoted with a quote it does not
 * contain (dotenv unescapes nothing in single quotes and backticks); in JSON a single quote
 * can always be written as \u0027 instead.
 */
export function devVars(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => {
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`${name} is not a variable name wrangler accepts.`);
      const quoted = !value.includes("'")
        ? `'${value}'`
        : isJson(value)
          ? `'${value.replaceAll("'", "\\u0027")}'`
          : !value.includes("`")
            ? `\`${value}\``
            : null;
      if (quoted === null) throw new Error(`${name} holds both ' and \`; the local runner cannot pass it to wrangler.`);
      return `${name}=${quoted}\n`;
    })
    .join("");
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
