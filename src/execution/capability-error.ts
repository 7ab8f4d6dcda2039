// The errors capability bindings throw into the sandbox. RPC carries an Error's message,
// so the stable code leads it: "[capability_denied] docs is read-only: put is not allowed".

export const CAPABILITY_ERRORS = [
  "capability_denied",
  "scope_violation",
  "action_not_in_scope",
  "invalid_request",
  "egress_denied",
  "upstream_failed",
  "operation_not_granted",
  "result_too_large",
  "connector_changed",
  "approval_required",
  "approval_rejected",
] as const;
export type CapabilityErrorCode = (typeof CAPABILITY_ERRORS)[number];

export function capabilityError(code: CapabilityErrorCode, message: string): Error {
  const error = new Error(`[${code}] ${message}`);
  error.name = "CapabilityError";
  return error;
}

export function codeOf(error: unknown): CapabilityErrorCode | "internal_error" {
  const match = /^\[([a-z_]+)\]/.exec(error instanceof Error ? error.message : "");
  return (CAPABILITY_ERRORS as readonly string[]).includes(match?.[1] ?? "") ? (match?.[1] as CapabilityErrorCode) : "internal_error";
}
