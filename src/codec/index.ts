export * from './types.js';
export { encode, tryEncode, decode, decodeAt, copyRecord, RingViews, tensorLength, tensorView, writeTensorHeader } from './codec.js';
export { ShapeEncoder, ShapeDecoder } from './shapes.js';
