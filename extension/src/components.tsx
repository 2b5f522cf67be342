/** Small React pieces used by several views. */
import * as React from 'react';
import { FormComponent } from '@jupyterlab/ui-components';
import validator from '@rjsf/validator-ajv8';
import type { Json, JsonSchema } from './api';
import { FormPlan, JsonInputError, planForm, valueFromForm } from './schemaform';

/** A coloured chip for a run's or a step's status. */
export function StatusChip(props: { status: string }): JSX.Element {
  const status = (props.status || 'unknown').toLowerCase();
  return (
    <span className={`jp-FlovynChip jp-FlovynChip-${status}`} data-status={status}>
      {status}
    </span>
  );
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) {
    return '';
  }
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return iso;
  }
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.round(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.round(seconds / 3600)} h ago`;
  }
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A JSON value, pretty-printed. */
export function JsonView(props: { value: Json | undefined }): JSX.Element {
  const text = props.value === undefined ? '' : JSON.stringify(props.value, null, 2);
  return <pre className="jp-FlovynJson">{text}</pre>;
}

/** The state of one schema form: its plan and the data being edited. */
export interface FormState {
  plan: FormPlan;
  data: any;
}

export function initialForm(schema: JsonSchema | null | undefined, data?: any): FormState {
  const plan = planForm(schema);
  return { plan, data: data ?? (plan.rawJson ? '' : {}) };
}

/**
 * The value of a form, or the message that says what is wrong (schema validation with
 * the same JSON-schema rules the server applies, so most mistakes never leave the page).
 */
export function formValue(state: FormState): { value: Json } | { error: string } {
  try {
    const value = valueFromForm(state.plan, state.data);
    if (!state.plan.rawJson) {
      const result = validator.validateFormData(state.data, state.plan.schema);
      if (result.errors.length > 0) {
        return { error: result.errors.map(e => e.stack).join('; ') };
      }
    }
    return { value };
  } catch (error) {
    if (error instanceof JsonInputError) {
      return { error: error.message };
    }
    throw error;
  }
}

/** A form built from a JSON schema (JupyterLab's rjsf form), or a JSON text box. */
export function SchemaForm(props: {
  state: FormState;
  onChange: (state: FormState) => void;
  idPrefix?: string;
}): JSX.Element {
  const { state, onChange } = props;
  if (state.plan.rawJson) {
    return (
      <textarea
        className="jp-FlovynJsonInput jp-mod-styled"
        aria-label="JSON value"
        placeholder='true, 3, "text" or {"key": 1}'
        value={typeof state.data === 'string' ? state.data : ''}
        onChange={event => onChange({ ...state, data: event.target.value })}
      />
    );
  }
  return (
    <div className="jp-FlovynForm">
      <FormComponent
        schema={state.plan.schema}
        formData={state.data}
        validator={validator as any}
        idPrefix={props.idPrefix ?? 'root'}
        uiSchema={{ 'ui:submitButtonOptions': { norender: true } }}
        onChange={event => onChange({ ...state, data: event.formData })}
        showModifiedFromDefault={false}
        compact={true}
      />
    </div>
  );
}
