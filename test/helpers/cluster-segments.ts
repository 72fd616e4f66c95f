// Segment code for the cluster tests (exported so worker threads can import it): deterministic
// records of every kind, and a sink that checks them as they arrive.
import type { SegmentContext } from '../../src/index.js';

/** Record i of the mixed stream: numbers, strings, JSON, bytes, structured values, tensors. */
export function mixedRecord(i: number, big: number): unknown {
  switch (i % 7) {
    case 0:
      return i * 1.5;
    case 1:
      return `record ${i} ✓`;
    case 2:
      return { i, tags: ['a', 'b'], nested: { ok: true, v: null } };
    case 3: {
      const b = new Uint8Array(100 + (i % 13));
      for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k) & 0xff;
      return b;
    }
    case 4:
      return new Map<string, unknown>([['i', i], ['when', new Date(1_700_000_000_000 + i)]]);
    case 5: {
      // Larger than the server's max_payload when `big` is: chunked.
      const n = i % 2 ? big : 1000;
      const data = new Float32Array(n);
      for (let k = 0; k < n; k++) data[k] = i + k * 0.5;
      return { data, shape: [n], dtype: 'float32' };
    }
    default: {
      const a = new Int32Array(17);
      for (let k = 0; k < a.length; k++) a[k] = i * 1000 + k;
      return a;
    }
  }
}

/** Why record `got` is not record i, or undefined when it is. */
export function mismatch(i: number, got: unknown, big: number): string | undefined {
  const want = mixedRecord(i, big);
  const same = (a: unknown, b: unknown): boolean => {
    if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
      if (a.constructor !== b.constructor || a.byteLength !== b.byteLength) return false;
      const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
      return true;
    }
    if (a instanceof Map && b instanceof Map) return a.size === b.size && [...a].every(([k, v]) => same(v, b.get(k)));
    if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
    if (a && b && typeof a === 'object' && typeof b === 'object') {
      const ka = Object.keys(a), kb = Object.keys(b);
      return ka.length === kb.length && ka.every((k) => same((a as any)[k], (b as any)[k]));
    }
    return Object.is(a, b);
  };
  return same(want, got) ? undefined : `record ${i}: got ${String(got).slice(0, 80)}, want ${String(want).slice(0, 80)}`;
}

/** Source: `count` mixed records. */
export function* mixedSource(options: { count: number; big: number }) {
  for (let i = 0; i < options.count; i++) yield mixedRecord(i, options.big);
}

/** Sink: checks each record against its index as it arrives; teardown reports counts and the first errors. */
export class CheckMixed {
  n = 0;
  errors: string[] = [];
  big = 0;
  setup(options: { big: number }) {
    this.big = options.big;
  }
  run(record: unknown) {
    const e = mismatch(this.n, record, this.big);
    if (e && this.errors.length < 5) this.errors.push(e);
    this.n++;
  }
  teardown() {
    return { count: this.n, errors: this.errors };
  }
}

/** Source: `count` float32 tensors of `size` elements made in place (benchmarks). */
export async function* tensorSource(options: { count: number; size: number }, ctx: SegmentContext) {
  for (let i = 0; i < options.count; i++) {
    const t = await ctx.tensor([options.size], 'float32');
    t.data[0] = i;
    t.data[options.size - 1] = i;
    yield t;
  }
}

/** Sink: counts records and checks a tensor's first element is its index. */
export class CountInOrder {
  n = 0;
  bad = 0;
  run(record: { data?: Float32Array } | number) {
    const first = typeof record === 'number' ? record : record.data![0];
    if (first !== this.n) this.bad++;
    this.n++;
  }
  teardown() {
    return { count: this.n, bad: this.bad };
  }
}
