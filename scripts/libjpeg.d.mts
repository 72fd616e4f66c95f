// Types of scripts/libjpeg.mjs.
export declare class LibjpegMissingError extends Error {
  readonly code: 'ERR_LIBJPEG_MISSING';
}
export interface LibjpegFiles {
  header: string;
  library: string;
}
export declare function findLibjpeg(env?: NodeJS.ProcessEnv): LibjpegFiles | undefined;
export declare function ensureLibjpeg(options?: { find?: () => LibjpegFiles | undefined; log?: (message: string) => void }): LibjpegFiles & { installed: boolean };
