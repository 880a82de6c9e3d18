import { waitFor } from './wait.js';

/** Polls GET /v1/messages/:id until the request is completed, and returns its summary. */
export function waitCompleted(
  api: { url?: string },
  id: string,
  headers: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const res = await fetch(`${api.url}/v1/messages/${id}`, { headers });
      const body = (await res.json()) as Record<string, unknown>;
      return body.state === 'completed' ? body : undefined;
    },
    { timeoutMs, what: `request ${id} completed` },
  );
}
