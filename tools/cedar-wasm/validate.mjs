// Validate policies against a schema with the official Cedar build (@cedar-policy/cedar-wasm).
// stdin: {"schema": "<cedar schema text>" | {...json}, "policies": "<cedar policies>"}
// stdout: {"schema": <checkParseSchema answer>, "validation": <validate answer>}
import { readFileSync } from "node:fs";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

const input = JSON.parse(readFileSync(0, "utf8"));
const schema = input.schema;
const out = { version: cedar.getCedarVersion ? cedar.getCedarVersion() : null };
out.schema = cedar.checkParseSchema(schema);
out.validation = cedar.validate({
  schema,
  policies: { staticPolicies: input.policies },
  validationSettings: { mode: "strict" },
});
process.stdout.write(JSON.stringify(out));
