import type { Dispatcher } from 'undici';

/**
 * `dispatcher`, calling `onWritten` when a request is about to be written to its socket: undici
 * starts a request (`onRequestStart`) on a connected socket, right before writing it. That is
 * when the provider may see it, so that is when the allowance counts it (see CallGrant).
 */
export function notifyWhenWritten(dispatcher: Dispatcher, onWritten: () => void): Dispatcher {
  return dispatcher.compose(
    (dispatch) => (opts, handler) =>
      dispatch(opts, {
        onRequestStart(controller, context) {
          onWritten();
          handler.onRequestStart?.(controller, context);
        },
        onRequestUpgrade: (controller, statusCode, headers, socket) =>
          handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
        onResponseStart: (controller, statusCode, headers, statusMessage) =>
          handler.onResponseStart?.(controller, statusCode, headers, statusMessage),
        onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
        onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
        onResponseError: (controller, err) => handler.onResponseError?.(controller, err),
      }),
  );
}
