/**
 * From a promise's or a workflow input's JSON schema (as pydantic writes it) to what the
 * form library needs, and back from the form's data to the value sent to the server.
 */
import type { Json, JsonSchema } from './api';

/** How a value is edited: a schema form, or raw JSON text when the schema says nothing. */
export interface FormPlan {
  /** The schema handed to the form (an object schema; a scalar is wrapped as `value`). */
  schema: JsonSchema;
  /** True when the original schema was wrapped as `{value: schema}`. */
  wrapped: boolean;
  /** True when there is no usable schema: the user types JSON. */
  rawJson: boolean;
}

function isObjectSchema(schema: JsonSchema): boolean {
  return schema.type === 'object' || (schema.properties !== undefined && !schema.type);
}

/** True when the schema accepts any value (missing, `{}`, or `true`). */
export function isAnySchema(schema: JsonSchema | null | undefined | boolean): boolean {
  if (schema === null || schema === undefined || schema === true) {
    return true;
  }
  if (typeof schema !== 'object') {
    return false;
  }
  const meaningful = Object.keys(schema).filter(
    key => !['title', 'description', '$schema', 'default'].includes(key)
  );
  return meaningful.length === 0;
}

/** Plans the form of a schema. */
export function planForm(schema: JsonSchema | null | undefined): FormPlan {
  if (isAnySchema(schema)) {
    return { schema: { type: 'string', title: 'JSON value' }, wrapped: false, rawJson: true };
  }
  const given = schema as JsonSchema;
  if (isObjectSchema(given)) {
    return { schema: given, wrapped: false, rawJson: false };
  }
  // Keep $defs at the root so $refs of the wrapped schema still resolve.
  const { $defs, definitions, ...inner } = given;
  const wrappedSchema: JsonSchema = {
    type: 'object',
    properties: { value: { title: given.title ?? 'Value', ...inner } },
    required: ['value']
  };
  if ($defs) {
    wrappedSchema.$defs = $defs;
  }
  if (definitions) {
    wrappedSchema.definitions = definitions;
  }
  return { schema: wrappedSchema, wrapped: true, rawJson: false };
}

/** A class of error raised when the typed JSON text does not parse. */
export class JsonInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonInputError';
  }
}

/** Parses JSON typed by the user, with one clear message when it is not JSON. */
export function parseJsonInput(text: string): Json {
  const trimmed = text.trim();
  if (trimmed === '') {
    return null;
  }
  try {
    return JSON.parse(trimmed) as Json;
  } catch (error) {
    throw new JsonInputError(
      `not valid JSON (${(error as Error).message}): write e.g. true, 3, "text" or {"key": 1}`
    );
  }
}

/** The value to send for the form's data under a plan. */
export function valueFromForm(plan: FormPlan, formData: any): Json {
  if (plan.rawJson) {
    return parseJsonInput(typeof formData === 'string' ? formData : '');
  }
  if (plan.wrapped) {
    return (formData?.value ?? null) as Json;
  }
  return (formData ?? {}) as Json;
}

/** The form data that shows a value under a plan (for "start again with edited input"). */
export function formFromValue(plan: FormPlan, value: Json | undefined): any {
  if (plan.rawJson) {
    return value === undefined ? '' : JSON.stringify(value, null, 2);
  }
  if (plan.wrapped) {
    return value === undefined ? {} : { value };
  }
  return value ?? {};
}

/** One answer button of a notification. */
export interface QuickAnswer {
  label: string;
  value: Json;
}

function resolveRef(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    if (match && root[match[1]]?.[match[2]]) {
      return root[match[1]][match[2]];
    }
  }
  return schema;
}

function scalarAnswers(schema: JsonSchema, root: JsonSchema): QuickAnswer[] | null {
  const resolved = resolveRef(schema, root);
  if (resolved.type === 'boolean') {
    return [
      { label: 'Yes', value: true },
      { label: 'No', value: false }
    ];
  }
  if (Array.isArray(resolved.enum) && resolved.enum.length > 0 && resolved.enum.length <= 5) {
    return resolved.enum.map((value: Json) => ({ label: String(value), value }));
  }
  return null;
}

/**
 * The buttons that answer a promise in one click: for a boolean or a small enum, or an
 * object whose only required field is one (the other fields having defaults). Null when
 * the answer needs the form.
 */
export function quickAnswers(schema: JsonSchema | null | undefined): QuickAnswer[] | null {
  if (isAnySchema(schema)) {
    return null;
  }
  const root = schema as JsonSchema;
  const direct = scalarAnswers(root, root);
  if (direct) {
    return direct;
  }
  if (isObjectSchema(root) && root.properties) {
    const required: string[] = root.required ?? [];
    if (required.length !== 1) {
      return null;
    }
    const key = required[0];
    const answers = scalarAnswers(root.properties[key] ?? {}, root);
    return answers
      ? answers.map(answer => ({ label: answer.label, value: { [key]: answer.value } }))
      : null;
  }
  return null;
}
