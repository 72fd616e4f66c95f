// The shipped JSON Schema and its compiled validator.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { packageRoot } from '../cache/package-root.js';

let schema: Record<string, unknown> | undefined;
let validator: ValidateFunction | undefined;
let ajv: Ajv | undefined;

/** Path of `schema/pipeline.schema.json` in the installed package. */
export function pipelineSchemaPath(): string {
  return join(packageRoot(), 'schema', 'pipeline.schema.json');
}

/** The JSON Schema of pipeline files (draft-07), as shipped in `schema/pipeline.schema.json`. */
export function pipelineSchema(): Record<string, unknown> {
  schema ??= JSON.parse(readFileSync(pipelineSchemaPath(), 'utf8')) as Record<string, unknown>;
  return schema;
}

/** The shared Ajv instance (all errors reported, not only the first). */
export function getAjv(): Ajv {
  ajv ??= new Ajv({ allErrors: true, strict: false });
  return ajv;
}

/** Validates a parsed pipeline against the schema; returns Ajv's raw errors (empty when valid). */
export function schemaErrors(spec: unknown): ErrorObject[] {
  validator ??= getAjv().compile(pipelineSchema());
  return validator(spec) ? [] : [...(validator.errors ?? [])];
}
