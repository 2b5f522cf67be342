import { describe, expect, it } from 'vitest';
import { JsonInputError, formFromValue, planForm, quickAnswers, valueFromForm } from '../schemaform';

// The schema pydantic writes for the Decision model of tests/test_browser.py.
const DECISION = {
  title: 'Decision',
  type: 'object',
  properties: {
    approved: { title: 'Approved', type: 'boolean' },
    amount: { title: 'Amount', type: 'integer', minimum: 1, description: 'units to order' },
    comment: { title: 'Comment', type: 'string', default: '' }
  },
  required: ['approved', 'amount']
};

describe('planForm', () => {
  it('hands an object schema over as it is', () => {
    const plan = planForm(DECISION);
    expect(plan).toEqual({ schema: DECISION, wrapped: false, rawJson: false });
    expect(valueFromForm(plan, { approved: true, amount: 3 })).toEqual({ approved: true, amount: 3 });
  });

  it('wraps a scalar schema as {value}, keeping $defs at the root', () => {
    const plan = planForm({ $ref: '#/$defs/Color', $defs: { Color: { enum: ['red', 'blue'] } } });
    expect(plan.wrapped).toBe(true);
    expect(plan.schema.$defs.Color.enum).toEqual(['red', 'blue']);
    expect(plan.schema.properties.value.$ref).toBe('#/$defs/Color');
    expect(valueFromForm(plan, { value: 'red' })).toBe('red');
    expect(formFromValue(plan, 'blue')).toEqual({ value: 'blue' });
  });

  it('lets the user type JSON when the schema says nothing', () => {
    for (const schema of [null, undefined, {}, { title: 'anything' }]) {
      expect(planForm(schema).rawJson).toBe(true);
    }
    const plan = planForm(null);
    expect(valueFromForm(plan, '{"a": [1, 2]}')).toEqual({ a: [1, 2] });
    expect(valueFromForm(plan, '   ')).toBe(null);
    expect(formFromValue(plan, { a: 1 })).toBe('{\n  "a": 1\n}');
    expect(() => valueFromForm(plan, '{a: 1}')).toThrow(JsonInputError);
    expect(() => valueFromForm(plan, '{a: 1}')).toThrow(/not valid JSON .*write e.g. true/);
  });
});

describe('quickAnswers', () => {
  it('offers Yes/No for a boolean and one button per choice of a small enum', () => {
    expect(quickAnswers({ type: 'boolean' })).toEqual([
      { label: 'Yes', value: true },
      { label: 'No', value: false }
    ]);
    expect(quickAnswers({ enum: ['ship', 'hold'] })?.map(a => a.value)).toEqual(['ship', 'hold']);
    expect(quickAnswers({ enum: [1, 2, 3, 4, 5, 6] })).toBe(null);
  });

  it('answers an object whose only required field is a boolean or an enum behind a $ref', () => {
    const schema = {
      type: 'object',
      properties: { choice: { $ref: '#/$defs/Choice' }, note: { type: 'string', default: '' } },
      required: ['choice'],
      $defs: { Choice: { enum: ['a', 'b'] } }
    };
    expect(quickAnswers(schema)).toEqual([
      { label: 'a', value: { choice: 'a' } },
      { label: 'b', value: { choice: 'b' } }
    ]);
  });

  it('needs the form when more than a choice is asked', () => {
    expect(quickAnswers(DECISION)).toBe(null);
    expect(quickAnswers({ type: 'integer' })).toBe(null);
    expect(quickAnswers(null)).toBe(null);
  });
});
