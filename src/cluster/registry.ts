// Built-in work types by name: items whose `run` is `ringpipe:<name>`.
import type { WorkFunction } from './context.js';

/**
 * A work type's code: a `module#export` reference (a file URL, an absolute path or a package name),
 * imported in each item's own process like any work item, so a timed-out or abandoned item is
 * terminated; or a loader, run inside the agent (a function cannot cross to another process: past
 * a timeout such an item fails but its code is left running).
 */
export type WorkTypeCode = string | (() => Promise<WorkFunction> | WorkFunction);

const builtins = new Map<string, WorkTypeCode>();

/**
 * Registers a work type, run by items whose `run` is `ringpipe:<name>`. Prefer a `module#export`
 * reference (`${import.meta.url}#myWork`); a loader is called the first time an agent runs one.
 */
export function registerWorkType(name: string, code: WorkTypeCode): void {
  builtins.set(name, code);
}

/** The code of a registered work type, or undefined. */
export function builtinWorkType(name: string): WorkTypeCode | undefined {
  return builtins.get(name);
}

/** Names of the registered work types. */
export function workTypes(): string[] {
  return [...builtins.keys()];
}
