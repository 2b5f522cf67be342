import { describe, expect, it } from 'vitest';
import { RunsPaging } from '../paging';

describe('RunsPaging', () => {
  it('pages through 10,000 runs, 50 at a time', () => {
    const paging = new RunsPaging(50);
    paging.applyTotal(10_000);
    expect(paging.pages).toBe(200);
    expect(paging.rangeLabel()).toBe('1–50 of 10,000');
    paging.next();
    expect(paging.query()).toMatchObject({ limit: 50, offset: 50 });
    paging.goTo(200);
    expect(paging.offset).toBe(9950);
    expect(paging.hasNext).toBe(false);
    paging.next();
    expect(paging.offset).toBe(9950);
    expect(paging.rangeLabel()).toBe('9951–10000 of 10,000');
    paging.goTo(999);
    expect(paging.page).toBe(200);
  });

  it('goes back to the first page when a filter changes, not when it is set again', () => {
    const paging = new RunsPaging(20);
    paging.applyTotal(100);
    paging.goTo(3);
    paging.setFilter({ status: '' });
    expect(paging.offset).toBe(40);
    paging.setFilter({ status: 'FAILED', q: 'etl' });
    expect(paging.offset).toBe(0);
    expect(paging.query()).toEqual({ status: 'FAILED', kind: '', q: 'etl', sort: '-created', limit: 20, offset: 0 });
  });

  it('moves to the last page that still exists when the total shrinks', () => {
    const paging = new RunsPaging(10);
    paging.applyTotal(100);
    paging.goTo(10);
    expect(paging.applyTotal(35)).toBe(true);
    expect(paging.offset).toBe(30);
    expect(paging.applyTotal(35)).toBe(false);
    expect(paging.applyTotal(0)).toBe(true);
    expect(paging.offset).toBe(0);
    expect(paging.rangeLabel()).toBe('0 of 0');
    paging.prev();
    expect(paging.offset).toBe(0);
  });

  it('refuses a page size that is not a positive integer', () => {
    expect(() => new RunsPaging(0)).toThrow(/page size must be a positive integer, got 0/);
  });
});
