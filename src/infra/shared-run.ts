/**
 * `work`, run once for every caller that asks while it runs: they all get its one promise, and the
 * next call after it settles runs it afresh. For reads open to anyone (readiness, metrics), so a
 * burst of requests costs the backends one round of queries, not one per request.
 */
export function sharedRun<T>(work: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= work().finally(() => {
      running = undefined;
    });
    return running;
  };
}
