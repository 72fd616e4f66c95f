// Built-in work types by name: items whose `run` is `ringpipe:<name>`.
import type { WorkFunction } from './agent.js';

const builtins = new Map<string, () => Promise<WorkFunction>>();

/**
 * Registers a built-in work type, run by items whose `run` is `ringpipe:<name>`. `load` is called
 * the first time an agent runs one (so heavy modules load only where they are used).
 */
export function registerWorkType(name: string, load: () => Promise<WorkFunction> | WorkFunction): void {
  builtins.set(name, async () => load());
}

/** The loader of a built-in work type, or undefined. */
export function builtinWorkType(name: string): (() => Promise<WorkFunction>) | undefined {
  return builtins.get(name);
}

/** Names of the registered work types. */
export function workTypes(): string[] {
  return [...builtins.keys()];
}
