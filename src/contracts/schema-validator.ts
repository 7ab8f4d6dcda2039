// The JSON Schema validator of a schema in a contract or connector file (draft 2020-12,
// every error collected), compiled once per schema object.
import { Validator } from "@cfworker/json-schema";

const validators = new WeakMap<object, Validator>();

/** A schema object that arrives over RPC is a fresh copy, so it is compiled again: correct, only not cached. */
export function validatorFor(schema: object): Validator {
  let validator = validators.get(schema);
  if (!validator) {
    validator = new Validator(schema as ConstructorParameters<typeof Validator>[0], "2020-12", false);
    validators.set(schema, validator);
  }
  return validator;
}
