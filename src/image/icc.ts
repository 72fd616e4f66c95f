/**
 * Whether an embedded ICC profile is sRGB in all but name. sharp converts every image with a
 * profile to sRGB through it (littleCMS); for an sRGB profile that is the identity, so such a JPEG
 * can take the fused path, which does no colour management. Any other profile (Display P3, Adobe
 * RGB, a LUT-based profile) leaves the image to sharp.
 *
 * The test is on the profile's content, not its name: an RGB matrix/TRC profile (no A2B LUTs,
 * which littleCMS would use instead) whose colorants are sRGB's primaries (D50-adapted) and whose
 * three tone curves follow sRGB's within half an 8-bit step.
 */

/** sRGB's colorants, adapted to D50 (the PCS white), as sRGB profiles store them. */
const SRGB_COLORANTS: Record<string, [number, number, number]> = {
  rXYZ: [0.4361, 0.2225, 0.0139],
  gXYZ: [0.3851, 0.7169, 0.0971],
  bXYZ: [0.1431, 0.0606, 0.7141],
};
const COLORANT_TOLERANCE = 0.003;
const CURVE_TOLERANCE = 0.5 / 255;
const LUT_TAGS = ['A2B0', 'A2B1', 'A2B2'];

/** sRGB's transfer function, encoded value -> linear light. */
function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

/** A tone curve (`curv` or `para`) as a function, or undefined for a type this check does not know. */
function toneCurve(p: Uint8Array, dv: DataView, off: number, size: number): ((x: number) => number) | undefined {
  if (size < 12) return undefined;
  const type = String.fromCharCode(p[off]!, p[off + 1]!, p[off + 2]!, p[off + 3]!);
  if (type === 'curv') {
    const n = dv.getUint32(off + 8);
    if (n < 2 || size < 12 + 2 * n) return undefined; // identity or a pure gamma: not sRGB's curve
    return (x) => {
      const f = x * (n - 1);
      const i = Math.min(n - 2, Math.floor(f));
      const a = dv.getUint16(off + 12 + 2 * i) / 65535;
      const b = dv.getUint16(off + 12 + 2 * (i + 1)) / 65535;
      return a + (b - a) * (f - i);
    };
  }
  if (type === 'para') {
    const fn = dv.getUint16(off + 8);
    const count = [1, 3, 4, 5, 7][fn];
    if (count === undefined || size < 12 + 4 * count) return undefined;
    const [g, a = 1, b = 0, c = 0, d = 0, e = 0, f = 0] = Array.from({ length: count }, (_, i) => dv.getInt32(off + 12 + 4 * i) / 65536);
    switch (fn) {
      case 0: return (x) => x ** g!;
      case 1: return (x) => (x >= -b / a ? (a * x + b) ** g! : 0);
      case 2: return (x) => (x >= -b / a ? (a * x + b) ** g! + c : c);
      case 3: return (x) => (x >= d ? (a * x + b) ** g! : c * x);
      default: return (x) => (x >= d ? (a * x + b) ** g! + e : c * x + f);
    }
  }
  return undefined;
}

/** True when `profile` is an sRGB matrix/TRC profile (see the top of this file). */
export function isSrgbProfile(profile: Uint8Array): boolean {
  if (profile.length < 132) return false;
  const dv = new DataView(profile.buffer, profile.byteOffset, profile.byteLength);
  const sig = (o: number) => String.fromCharCode(profile[o]!, profile[o + 1]!, profile[o + 2]!, profile[o + 3]!);
  if (sig(16) !== 'RGB ' || sig(20) !== 'XYZ ' || sig(36) !== 'acsp') return false;
  const count = dv.getUint32(128);
  if (count > 200 || 132 + 12 * count > profile.length) return false;
  const tags = new Map<string, [number, number]>();
  for (let i = 0; i < count; i++) {
    const e = 132 + 12 * i;
    const off = dv.getUint32(e + 4);
    const size = dv.getUint32(e + 8);
    if (off + size > profile.length) return false;
    tags.set(sig(e), [off, size]);
  }
  if (LUT_TAGS.some((t) => tags.has(t))) return false;
  for (const [tag, want] of Object.entries(SRGB_COLORANTS)) {
    const t = tags.get(tag);
    if (!t || t[1] < 20 || sig(t[0]) !== 'XYZ ') return false;
    for (let k = 0; k < 3; k++) if (Math.abs(dv.getInt32(t[0] + 8 + 4 * k) / 65536 - want[k]!) > COLORANT_TOLERANCE) return false;
  }
  for (const tag of ['rTRC', 'gTRC', 'bTRC']) {
    const t = tags.get(tag);
    const curve = t && toneCurve(profile, dv, t[0], t[1]);
    if (!curve) return false;
    for (let k = 1; k <= 32; k++) if (Math.abs(curve(k / 32) - srgbToLinear(k / 32)) > CURVE_TOLERANCE) return false;
  }
  return true;
}
