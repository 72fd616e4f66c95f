export { Ring, RingMemory, attachRing, maxPayload, DEFAULT_CAPACITY, type RingOptions, type RingDescriptor } from './ring.js';
export { RingWriter, type WriterOptions } from './writer.js';
export { RingReader, EMPTY, END, type ReaderOptions, type Hold } from './reader.js';
export { createRegion, openRegion, unlinkRegion, cleanupStaleRegions, type RegionHandle } from './region.js';
export type { WaitOptions } from './wait.js';
