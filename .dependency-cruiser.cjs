// The import rules of src/, checked by `npm run check` (dependency-cruiser). The layers are
// written once, here, from the ground up: a folder may import its own files and any folder
// below it, never one above it, and no files may import each other in a loop.
// docs/architecture.md explains each layer; keep the two in step.
const LAYERS = [
  ["errors", "contracts", "redaction"], // shared vocabulary: codes, contract data, secret detectors
  ["log"], // server logs, redacted
  ["evidence"], // the hash-chained ledger, bundles, signing keys
  ["config", "viewer"], // the Worker's settings; evidence pages' view model
  ["identity", "budget"], // who calls; a tenant's leases and governance figures
  ["oauth"], // the built-in authorization server: sign-in, tokens for the same identity
  ["execution"], // admits signed tasks, runs them in a fresh isolate with their capabilities
  ["policy"], // decides, and signs what it allows (tasks the execution layer admits)
  ["approval", "catalog"], // the human gate; the bundled contracts and policy
  ["intent"], // a task's run: the named steps, each in the layer above
  ["batch", "mcp", "metrics"], // ways in: the batch lane, the MCP front door, figures
  ["http"], // the REST routes and error mapping
  ["platform.ts"], // the composition root: what an isolate builds once
  ["routes.ts"], // every HTTP route, with the one authentication guard
  ["index.ts"], // the Worker's handlers and exported classes
  ["local"], // what only `npm start` needs: never imported by the Worker
];

const folderOf = (name) => (name.endsWith(".ts") ? `^src/${name.replace(".", "\\.")}$` : `^src/${name}/`);

const upward = LAYERS.flatMap((layer, level) =>
  layer.map((name) => ({
    name: `no-upward-from-${name}`,
    comment: `${name} is in layer ${level + 1}; it may import only layers 1-${level + 1} (see LAYERS in .dependency-cruiser.cjs)`,
    severity: "error",
    from: { path: folderOf(name) },
    to: {
      path: LAYERS.slice(level + 1)
        .flat()
        .map(folderOf),
    },
  })),
).filter((rule) => rule.to.path.length > 0);

// Files of one layer that import each other are fine only downward too: a folder is not a layer of its own.
const sideways = LAYERS.flatMap((layer) =>
  layer.map((name) => ({
    name: `no-sideways-from-${name}`,
    comment: `${name} may not import ${layer.filter((other) => other !== name).join(", ")}: they are on the same layer`,
    severity: "error",
    from: { path: folderOf(name) },
    to: { path: layer.filter((other) => other !== name).map(folderOf) },
  })),
).filter((rule) => rule.to.path.length > 0);

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "Files that import each other in a loop cannot be understood (or loaded) one at a time.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-unlayered-folder",
      comment: "Every folder of src/ has a place in LAYERS; add a new one there and in docs/architecture.md.",
      severity: "error",
      from: { path: "^src/", pathNot: LAYERS.flat().map(folderOf) },
      to: {},
    },
    ...upward,
    ...sideways,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["\\.generated\\.", "^src/viewer/client/"] },
    // swc reads TypeScript here (dependency-cruiser does not drive typescript 7 yet); it sees type-only imports too
    parser: "swc",
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
