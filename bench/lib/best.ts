/** Runs `f` `reps` times and keeps the highest rate: on a shared machine the best run is the least disturbed. */
export async function bestOf(reps: number, f: () => Promise<number>): Promise<number> {
  let b = 0;
  for (let i = 0; i < reps; i++) b = Math.max(b, await f());
  return b;
}
