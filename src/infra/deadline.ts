// One way to bound a wait: race a promise against a timer that is always cleared once the race is
// settled, so a probe that answers in a millisecond leaves no timer behind to keep the process
// alive or fire later. The promise itself is not cancelled: whatever it was doing goes on, and its
// late result or failure is ignored (the race has already handled it, so it is never unhandled).

/** What a deadline that passed rejects with, when the caller names the wait instead of a fallback. */
export class DeadlineExceeded extends Error {
  constructor(
    readonly label: string,
    readonly ms: number,
  ) {
    super(`${label} timed out`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Settles as `promise` does if it settles within `ms`; otherwise, when `onTimeout` is a label,
 * rejects with `DeadlineExceeded` ("<label> timed out"), and when it is a function, settles as
 * what it returns (a fallback value, or a throw). The timer is cleared either way.
 */
export async function withDeadline<T>(
  promise: PromiseLike<T>,
  ms: number,
  onTimeout: string | (() => T | PromiseLike<T>),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      if (typeof onTimeout === 'string') reject(new DeadlineExceeded(onTimeout, ms));
      else {
        try {
          resolve(onTimeout());
        } catch (err) {
          reject(err);
        }
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
