// Deterministic test records, the mirror of native/testdata.h: record i of a run with `seed` has a
// length and bytes any side (C++ or JS, any thread or process) can recompute and check.
export function mix(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}
export const lengthOf = (i: number, seed: number, maxLen: number): number =>
  mix((Math.imul(i, 2654435761) + seed) >>> 0) % (maxLen + 1);
export const byteOf = (i: number, k: number, seed: number): number => (mix((i + seed) >>> 0) + Math.imul(k, 131)) & 0xff;

export function fill(bytes: Uint8Array, off: number, i: number, len: number, seed: number): void {
  const base = mix((i + seed) >>> 0);
  for (let k = 0; k < len; k++) bytes[off + k] = (base + Math.imul(k, 131)) & 0xff;
}
export function check(bytes: Uint8Array, off: number, i: number, len: number, seed: number): boolean {
  const base = mix((i + seed) >>> 0);
  for (let k = 0; k < len; k++) if (bytes[off + k] !== ((base + Math.imul(k, 131)) & 0xff)) return false;
  return true;
}
