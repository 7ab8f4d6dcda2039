// What the connector binding's senders share: the run's binding context, what a call's
// outcome carries into its record, and reading an answer under the size cap.

import type { ConnectorProps } from "./runtime-profile.ts";

/** The largest answer an operation returns to the code. */
export const OPERATION_RESULT_MAX_BYTES = 1_048_576;

/** sent: the call's request left (or may have: a network failure after the gateway let it through). */
export type Outcome = { status: number | null; bytes: number; args: string; approvalId?: string; replayed?: boolean; sent?: boolean };

export type BindingContext = ExecutionContext<ConnectorProps> & { exports: Cloudflare.Exports };

/** The body as text, or null once it passes the cap (the rest is not read). */
export async function cappedText(response: Response): Promise<string | null> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > OPERATION_RESULT_MAX_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(joined);
}
