// A work module that takes 4 s to load (a slow import, as on a loaded machine): agents import it
// by path to show that an item's timeout counts from the call of its function, not from its start.
await new Promise((r) => setTimeout(r, 4_000));

/** Returns at once, with the process it ran in. */
export function quick(p: { x: number }) {
  return { x: p.x, pid: process.pid };
}
