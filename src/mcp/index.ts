// Transport: the MCP front door. Stateless; every call goes down to intent.
export { createMcpServer, SERVER_INFO, toolAnnotations } from "./create-mcp-server.ts";
export { isDiscoveryRequest, MCP_ROUTE, type McpEndpoint, mcpHandler, serveMcp } from "./serve-mcp.ts";
export { RUN_RESULT_SCHEMA, toolInputSchema } from "./tool-schemas.ts";
