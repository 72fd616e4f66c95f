// Types of scripts/jemalloc.mjs.
export declare function ensureJemalloc(
  find: () => string | undefined,
  options?: { log?: (message: string) => void },
): { path: string; installed: boolean } | { path: undefined; reason: string };
