/**
 * TensorFlow.js backend resolution. In order of preference:
 *  1. `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA),
 *  2. `@tensorflow/tfjs-node` (libtensorflow on the CPU),
 *  3. `@tensorflow/tfjs` with `@tensorflow/tfjs-backend-wasm`, falling back to tfjs's pure-JS `cpu`.
 * The first two are optional peer dependencies (their install downloads libtensorflow). A package that
 * is installed but fails to load (e.g. its native binding or libtensorflow is missing) is skipped and
 * the reason kept in {@link ResolvedBackend.attempts}.
 *
 * tfjs is imported lazily here, never at module load: a trainer process must set
 * `CUDA_VISIBLE_DEVICES` before libtensorflow initialises.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TF from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { BackendError, type BackendAttempt } from './errors.js';

/** The tfjs namespace (`@tensorflow/tfjs`, or tfjs-node which re-exports it). */
export type Tf = typeof TF;

/**
 * Which backend to use. `'auto'` tries tfjs-node-gpu, tfjs-node, wasm, cpu in that order; any other
 * value uses that backend only and fails if it cannot load.
 */
export type BackendPreference = 'auto' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';

/** Every value a backend option takes. */
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'];

/** The outcome of {@link loadTf}. */
export interface ResolvedBackend {
  tf: Tf;
  /** tfjs's name of the active backend: `'tensorflow'` (tfjs-node/-gpu), `'wasm'` or `'cpu'`. */
  name: string;
  /** Package that provided it: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` or `@tensorflow/tfjs`. */
  package: string;
  /** Version of that package. */
  version: string;
  /**
   * Device the computation runs on as far as the process can tell: `'gpu'` for tfjs-node-gpu with
   * visible CUDA devices, otherwise `'cpu'`.
   */
  device: 'gpu' | 'cpu';
  /** `CUDA_VISIBLE_DEVICES` at load time (undefined when unset). */
  cudaVisibleDevices: string | undefined;
  /** Every candidate tried, in order; failed ones carry their reason. */
  attempts: BackendAttempt[];
  /** One line for logs and reports, e.g. `wasm (@tensorflow/tfjs 4.22.0, cpu; tfjs-node-gpu: not installed, ...)`. */
  description: string;
}

/** Options of {@link loadTf}. */
export interface LoadTfOptions {
  /** Backend to use. Default `'auto'`. */
  backend?: BackendPreference;
  /**
   * Directory or file that package names are resolved from (its `node_modules` chain). Default: this
   * module's location, i.e. ringpipe's own dependencies.
   */
  from?: string;
}

const GPU_PKG = '@tensorflow/tfjs-node-gpu';
const NODE_PKG = '@tensorflow/tfjs-node';
const TFJS_PKG = '@tensorflow/tfjs';
const WASM_PKG = '@tensorflow/tfjs-backend-wasm';

const cache = new Map<string, Promise<ResolvedBackend>>();

/**
 * Loads tfjs with the best available backend (see the module comment). Resolved once per process
 * and option set; later calls return the same result.
 * @throws BackendError when no candidate loads (or the one asked for does not).
 */
export function loadTf(options: LoadTfOptions = {}): Promise<ResolvedBackend> {
  const backend = options.backend ?? 'auto';
  if (!BACKEND_PREFERENCES.includes(backend)) {
    throw new InvalidArgumentError(`backend must be one of ${BACKEND_PREFERENCES.join(', ')}; got '${String(backend)}'`);
  }
  const from = options.from ?? import.meta.url;
  const key = `${backend}\0${from}`;
  let p = cache.get(key);
  if (!p) {
    p = resolveBackend(backend, from);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p.then(async (r) => {
    // tfjs has one active backend per process: re-activate ours if another call switched it.
    if (r.tf.getBackend() !== r.name) {
      await r.tf.setBackend(r.name);
      await r.tf.ready();
    }
    return r;
  });
}

async function resolveBackend(pref: BackendPreference, from: string): Promise<ResolvedBackend> {
  const req = createRequire(from.startsWith('file:') ? from : pathToFileURL(from.endsWith('/') ? from : `${from}/`).href);
  const attempts: BackendAttempt[] = [];
  const cuda = process.env.CUDA_VISIBLE_DEVICES;

  const done = async (tf: Tf, pkg: string, device: 'gpu' | 'cpu'): Promise<ResolvedBackend> => {
    const version = packageVersion(req, pkg);
    const name = tf.getBackend();
    const failed = attempts.filter((a) => a.reason).map((a) => `${a.candidate.replace('@tensorflow/', '')}: ${a.reason}`);
    return {
      tf,
      name,
      package: pkg,
      version,
      device,
      cudaVisibleDevices: cuda,
      attempts,
      description: `${name} (${pkg} ${version}, ${device}${cuda !== undefined ? `, CUDA_VISIBLE_DEVICES=${cuda}` : ''})` + (failed.length ? `; skipped ${failed.join('; ')}` : ''),
    };
  };

  for (const pkg of [GPU_PKG, NODE_PKG]) {
    const short = pkg === GPU_PKG ? 'tfjs-node-gpu' : 'tfjs-node';
    if (pref !== 'auto' && pref !== short) continue;
    try {
      const tf = (await importFrom(req, pkg)) as Tf;
      await tf.ready();
      if (tf.getBackend() !== 'tensorflow') {
        // Loaded, but did not register its native backend: treat as broken.
        throw new Error(`backend is '${tf.getBackend()}', not 'tensorflow'`);
      }
      attempts.push({ candidate: pkg });
      const hidden = cuda !== undefined && (cuda.trim() === '' || cuda.trim() === '-1');
      return await done(tf, pkg, pkg === GPU_PKG && !hidden ? 'gpu' : 'cpu');
    } catch (e) {
      attempts.push({ candidate: pkg, reason: reasonOf(e, pkg) });
    }
  }

  if (pref === 'auto' || pref === 'wasm' || pref === 'cpu') {
    let tf: Tf;
    try {
      tf = (await importFrom(req, TFJS_PKG)) as Tf;
    } catch (e) {
      attempts.push({ candidate: TFJS_PKG, reason: reasonOf(e, TFJS_PKG) });
      throw fail(pref, attempts);
    }
    if (pref !== 'cpu') {
      try {
        const wasm = (await importFrom(req, WASM_PKG)) as { setWasmPaths(prefix: string): void };
        // The .wasm binaries sit beside the package's main file (dist/); emscripten reads them from disk.
        wasm.setWasmPaths(`${dirname(req.resolve(WASM_PKG))}/`);
        if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
        await tf.ready();
        attempts.push({ candidate: 'wasm' });
        return await done(tf, TFJS_PKG, 'cpu');
      } catch (e) {
        attempts.push({ candidate: 'wasm', reason: reasonOf(e, WASM_PKG) });
        if (pref === 'wasm') throw fail(pref, attempts);
      }
    }
    try {
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
      await tf.ready();
      attempts.push({ candidate: 'cpu' });
      return await done(tf, TFJS_PKG, 'cpu');
    } catch (e) {
      attempts.push({ candidate: 'cpu', reason: (e as Error).message });
    }
  }
  throw fail(pref, attempts);
}

async function importFrom(req: NodeJS.Require, pkg: string): Promise<unknown> {
  const path = req.resolve(pkg);
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown> & { default?: unknown };
  // CommonJS packages arrive as { default: module.exports, ...named exports }: prefer the full object.
  return mod.default && typeof mod.default === 'object' && 'ready' in (mod.default as object) ? mod.default : mod;
}

function packageVersion(req: NodeJS.Require, pkg: string): string {
  try {
    return (req(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function reasonOf(e: unknown, pkg: string): string {
  const err = e as NodeJS.ErrnoException;
  if ((err?.code === 'MODULE_NOT_FOUND' || err?.code === 'ERR_MODULE_NOT_FOUND') && String(err.message).includes(pkg)) {
    return 'not installed';
  }
  const msg = String(err?.message ?? e).split('\n')[0]!;
  return `failed to load: ${msg}`;
}

function fail(pref: BackendPreference, attempts: BackendAttempt[]): BackendError {
  const lines = attempts.map((a) => `  ${a.candidate}: ${a.reason ?? 'ok'}`).join('\n');
  const hint =
    pref === 'tfjs-node-gpu' || pref === 'tfjs-node'
      ? `\nInstall it with \`npm install @tensorflow/${pref}\` (see docs on installing it offline with a local libtensorflow).`
      : '';
  return new BackendError(`no TensorFlow.js backend could be loaded for '${pref}':\n${lines}${hint}`, attempts);
}
