// TypeScript declarations of a connector's operations, generated from their JSON Schemas:
// what an agent reads to write code against `ctx.env.<connector>`. Covers the JSON Schema
// an operation's arguments are written in (objects, arrays, enums, const, the scalar types,
// unions); anything else is `unknown`, never a wrong type.
import type { Connector, Operation } from "./connector-schema.ts";

type Schema = Record<string, unknown>;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** One JSON Schema as a TypeScript type. */
export function typeOf(schema: unknown, depth = 0): string {
  if (depth > 6 || schema === null || typeof schema !== "object") return "unknown";
  const s = schema as Schema;
  if ("const" in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((value) => JSON.stringify(value)).join(" | ") || "never";
  for (const key of ["anyOf", "oneOf"] as const) {
    if (Array.isArray(s[key])) return (s[key] as unknown[]).map((branch) => typeOf(branch, depth + 1)).join(" | ");
  }
  const type = s.type;
  if (Array.isArray(type)) return type.map((one) => typeOf({ ...s, type: one }, depth + 1)).join(" | ");
  switch (type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array":
      return `Array<${typeOf(s.items, depth + 1)}>`;
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
      const fields = Object.entries(properties).map(([name, property]) => {
        const key = IDENTIFIER.test(name) ? name : JSON.stringify(name);
        const doc =
          typeof (property as Schema | null)?.description === "string" ? `/** ${String((property as Schema).description).replaceAll("*/", "* /")} */ ` : "";
        return `${doc}${key}${required.has(name) ? "" : "?"}: ${typeOf(property, depth + 1)}`;
      });
      const open = s.additionalProperties !== false && fields.length === 0;
      return fields.length === 0 ? (open ? "Record<string, unknown>" : "{}") : `{ ${fields.join("; ")} }`;
    }
    default:
      return "unknown";
  }
}

/** One operation as a method declaration, with its description and effect as the doc comment. */
export function operationDeclaration(name: string, operation: Operation): string {
  const doc = `${operation.description.replaceAll("*/", "* /")} (${operation.effect})`;
  const result = operation.result ? typeOf(operation.result) : "unknown";
  return `  /** ${doc} */\n  ${name}(args: ${typeOf(operation.arguments)}): Promise<${result}>;`;
}

/** The declaration of `ctx.env.<connector>` with the given operations. */
export function connectorDeclaration(connector: Connector, operations: readonly string[]): string {
  const methods = operations.flatMap((name) => {
    const operation = connector.operations[name];
    return operation ? [operationDeclaration(name, operation)] : [];
  });
  return `/** ${connector.description.replaceAll("*/", "* /")} */\ndeclare const ${connector.name}: {\n${methods.join("\n")}\n};`;
}
