export { asPlatformError, defaultHint, ERROR_CODES, type ErrorBody, type ErrorCode, PlatformError } from "./platform-error.ts";
