// Policy: what is allowed. decide() is pure; everything it needs is passed in.
export { type DecisionInput, decide } from "./decide.ts";
