export * from './types.js';
export { encode, tryEncode, decode, decodeAt, RingViews, tensorLength, tensorView, writeTensorHeader } from './codec.js';
export { ShapeEncoder, ShapeDecoder } from './shapes.js';
export { copyRecord, holdsSharedMemory } from './copy.js';
