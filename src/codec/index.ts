export * from './types.js';
export { encode, tryEncode, decode, copyRecord, RingViews, tensorLength, tensorView, writeTensorHeader } from './codec.js';
