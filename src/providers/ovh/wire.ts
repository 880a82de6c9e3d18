import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https, { type Agent } from 'node:https';

type AddRequest = (this: Agent, request: ClientRequest, options: unknown) => void;

/**
 * What came back on the wire for one call, read beside the `ovh` client: the client keeps only the
 * status and OVH's `message`, and drops the status of an unparseable body, every header
 * (`Retry-After`) and `errorCode`.
 */
export interface OvhExchange {
  /** HTTP status, once the response head arrived. */
  status?: number;
  headers?: IncomingHttpHeaders;
  /** The body as received so far (at most {@link MAX_BODY_CHARS}). */
  body: string;
}

/** A request the client started, with what we read of its answer. */
export interface WatchedRequest {
  request: ClientRequest;
  exchange: OvhExchange;
}

/** Enough for an error's JSON (`errorCode`, `message`); a report is parsed by the client, not here. */
const MAX_BODY_CHARS = 16_384;

/**
 * The agent the `ovh` client's requests go through: it passes no `agent`, so `https.request` uses
 * `https.globalAgent`, and the ClientRequest constructor hands itself to `agent.addRequest`
 * synchronously. (Node 20's `http.client.request.start` diagnostics channel would be cleaner, but
 * it publishes a tick later, when requests from several calls can no longer be told apart.)
 */
function currentAgent(): Agent {
  return https.globalAgent;
}

function watch(request: ClientRequest): WatchedRequest {
  const exchange: OvhExchange = { body: '' };
  request.on('response', (res: IncomingMessage) => {
    exchange.status = res.statusCode;
    exchange.headers = res.headers;
    // The client's own 'data' listener (added just before ours) already set the stream flowing;
    // a second listener gets the same chunks and takes nothing from it.
    res.on('data', (chunk: Buffer | string) => {
      if (exchange.body.length < MAX_BODY_CHARS) exchange.body += chunk.toString();
    });
  });
  return { request, exchange };
}

/**
 * Runs `start` (a `requestPromised` call) and returns its promise with the one HTTP request it
 * created. The `ovh` client calls `https.request` synchronously inside `requestPromised` once
 * time is synced (Bluebird runs the executor at once), and JavaScript runs nothing else meanwhile,
 * so the request the agent receives during `start` is this call's. `watched` is undefined when the client
 * made no request or several (a client version that behaves otherwise): the caller then
 * cannot cancel the call and must treat a late answer as possible.
 */
export function startWatched<T>(start: () => Promise<T>): { pending: Promise<T>; watched?: WatchedRequest } {
  const mine: ClientRequest[] = [];
  const agent = currentAgent();
  const addRequest: AddRequest = (agent as unknown as { addRequest: AddRequest }).addRequest;
  // An own property shadows the prototype's method for the synchronous call only; nothing else
  // runs meanwhile, so no other caller's request can pass through it.
  Object.defineProperty(agent, 'addRequest', {
    configurable: true,
    writable: true,
    value(this: Agent, request: ClientRequest, options: unknown) {
      mine.push(request);
      return addRequest.call(this, request, options);
    },
  });
  let pending: Promise<T>;
  try {
    pending = Promise.resolve(start());
  } finally {
    delete (agent as unknown as { addRequest?: AddRequest }).addRequest;
  }
  const [request, ...others] = mine;
  return request && others.length === 0 ? { pending, watched: watch(request) } : { pending };
}
