import { readFileSync } from 'node:fs';

// The child side of startChild (processes.ts): the spec it was started with, and the parent's
// messages over the IPC channel.

export const readSpec = <T>(): T => JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as T;

export const send = (message: unknown) => process.send?.(message);

/** Resolves with the parent's next message. */
export const nextMessage = () => new Promise<unknown>((resolve) => process.once('message', resolve));
