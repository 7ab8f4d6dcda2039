// Watches the contracts and policy folders the local server serves. A file made invalid
// while it runs is reported at once (the supervisor then answers every request with
// data_invalid, naming the file and field, until it is fixed: nothing sent meanwhile is
// held to run later); a valid change is handed on to be applied.
import { type FSWatcher, watch } from "node:fs";

export type DataState = { ok: true; files: string } | { ok: false; message: string };

/** Changes settle this long before the folders are read again (an editor writes a file in steps). */
const SETTLE_MS = 100;

export function watchData(options: {
  dirs: readonly string[];
  /** Reads and validates every file again (and writes what is bundled, when valid). */
  validate: () => DataState;
  onInvalid: (message: string) => void;
  /** `files`: what was read, to tell a change from a save of the same. */
  onValid: (files: string) => void;
}): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      const state = options.validate();
      if (state.ok) options.onValid(state.files);
      else options.onInvalid(state.message);
    }, SETTLE_MS);
  };
  const watchers: FSWatcher[] = options.dirs.map((dir) => watch(dir, { persistent: false }, changed));
  return () => {
    if (timer) clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
