// Transport: the MCP front door. Stateless; every call goes down to intent.
export { SERVER_INFO } from "./create-mcp-server.ts";
export { isDiscoveryRequest, MCP_ROUTE, mcpHandler, rebindingRefusal, serveMcp, withMcpCors } from "./serve-mcp.ts";
