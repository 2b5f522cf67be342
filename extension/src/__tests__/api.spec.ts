import { describe, expect, it } from 'vitest';
import { ApiError, FlovynApi, runsQueryString } from '../api';

function fakeServer(status: number, body: string) {
  const calls: { path: string; init: RequestInit }[] = [];
  const api = new FlovynApi(async (path, init) => {
    calls.push({ path, init });
    return new Response(body, { status });
  });
  return { api, calls };
}

describe('runsQueryString', () => {
  it('leaves out empty filters and keeps paging', () => {
    expect(runsQueryString({ status: '', kind: 'etl', q: '  ', limit: 50, offset: 100, sort: '-created' })).toBe(
      '?kind=etl&limit=50&offset=100&sort=-created'
    );
    expect(runsQueryString({})).toBe('');
  });
});

describe('FlovynApi', () => {
  it('lists runs with the query of the page', async () => {
    const { api, calls } = fakeServer(200, JSON.stringify({ runs: [], total: 7, limit: 50, offset: 0 }));
    const page = await api.listRuns({ status: 'WAITING', limit: 50, offset: 0 });
    expect(page.total).toBe(7);
    expect(calls[0].path).toBe('runs?status=WAITING&limit=50&offset=0');
    expect(calls[0].init.method).toBe('GET');
  });

  it('posts a resolve with the value as JSON, the ids encoded in the path', async () => {
    const { api, calls } = fakeServer(200, '{}');
    await api.resolvePromise('order/1 a', 'approval', { approved: true });
    expect(calls[0].path).toBe('runs/order%2F1%20a/promises/approval/resolve');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ value: { approved: true } });
  });

  it('sends only the start options that were given', async () => {
    const { api, calls } = fakeServer(200, '{"workflowId": "w-1"}');
    const result = await api.startWorkflow('etl', { day: 1 }, { workflowId: '', queue: 'q' });
    expect(result.workflowId).toBe('w-1');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ input: { day: 1 }, queue: 'q' });
  });

  it("turns the server's {error} into an ApiError with its status", async () => {
    const { api } = fakeServer(404, '{"error": "no run named x"}');
    const failure = await api.getRun('x').catch(e => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure.status).toBe(404);
    expect(failure.message).toBe('no run named x');
  });

  it('names the status when the error body is not JSON', async () => {
    const { api } = fakeServer(502, '<html>bad gateway</html>');
    const failure = await api.listPromises().catch(e => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure.message).toBe('GET promises failed with HTTP 502');
  });

  it('unwraps the lists of promises, workflows and log lines', async () => {
    const { api, calls } = fakeServer(200, '{"promises": [], "workflows": [], "lines": [{"text": "hi"}]}');
    expect(await api.listPromises()).toEqual([]);
    expect(await api.listWorkflows()).toEqual([]);
    expect(await api.getLogs('r', '2026-01-01T00:00:00Z')).toEqual([{ text: 'hi' }]);
    expect(calls[2].path).toBe('runs/r/logs?since=2026-01-01T00%3A00%3A00Z');
  });
});
