/**
 * The state of the sidebar's run list: filters, sort and the current page. The server
 * pages (`limit`/`offset`), so the browser holds one page whatever the store's size.
 */
import type { RunsQuery } from './api';

export interface RunsFilter {
  status: string;
  kind: string;
  q: string;
  sort: string;
}

export const DEFAULT_FILTER: RunsFilter = { status: '', kind: '', q: '', sort: '-created' };

export class RunsPaging {
  private _filter: RunsFilter = { ...DEFAULT_FILTER };
  private _offset = 0;
  private _total = 0;

  constructor(readonly pageSize = 50) {
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new RangeError(`page size must be a positive integer, got ${pageSize}`);
    }
  }

  get filter(): RunsFilter {
    return this._filter;
  }

  get offset(): number {
    return this._offset;
  }

  get total(): number {
    return this._total;
  }

  /** 1-based number of the current page. */
  get page(): number {
    return Math.floor(this._offset / this.pageSize) + 1;
  }

  /** Number of pages (at least 1, so that an empty list still shows "page 1 of 1"). */
  get pages(): number {
    return Math.max(1, Math.ceil(this._total / this.pageSize));
  }

  get hasPrev(): boolean {
    return this._offset > 0;
  }

  get hasNext(): boolean {
    return this._offset + this.pageSize < this._total;
  }

  /** Changes filters; a new filter starts again at the first page. */
  setFilter(change: Partial<RunsFilter>): void {
    const next = { ...this._filter, ...change };
    const changed = (Object.keys(next) as (keyof RunsFilter)[]).some(
      key => next[key] !== this._filter[key]
    );
    if (changed) {
      this._filter = next;
      this._offset = 0;
    }
  }

  next(): void {
    if (this.hasNext) {
      this._offset += this.pageSize;
    }
  }

  prev(): void {
    this._offset = Math.max(0, this._offset - this.pageSize);
  }

  goTo(page: number): void {
    const clamped = Math.min(Math.max(1, Math.floor(page)), this.pages);
    this._offset = (clamped - 1) * this.pageSize;
  }

  /** The query of the current page. */
  query(): RunsQuery {
    return { ...this._filter, limit: this.pageSize, offset: this._offset };
  }

  /**
   * Takes the total of a page the server sent. Returns true when the current page no
   * longer exists (runs were deleted or a filter shrank): the offset moved to the last
   * page, and the caller should load again.
   */
  applyTotal(total: number): boolean {
    this._total = Math.max(0, total);
    if (this._offset > 0 && this._offset >= this._total) {
      this._offset = (this.pages - 1) * this.pageSize;
      return true;
    }
    return false;
  }

  /** "51–100 of 10,000" (for the pager's label). */
  rangeLabel(): string {
    if (this._total === 0) {
      return '0 of 0';
    }
    const first = this._offset + 1;
    const last = Math.min(this._offset + this.pageSize, this._total);
    return `${first}–${last} of ${this._total.toLocaleString('en-US')}`;
  }
}
