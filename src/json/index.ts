/**
 * `ringpipe/json`: pipelines described in JSON (Pipetree's model: parameters, grid and random
 * search items, file sources, stages naming a function), planned into branches and run locally or
 * on a cluster, with every stage's output cached by content (`FsArtifactStore`).
 *
 * @example
 * import { JsonPipeline } from 'ringpipe/json';
 * const pipeline = await JsonPipeline.load('pipeline.json');
 * const result = await pipeline.run();   // a second run loads every stage from the cache
 */
export * from '../config/index.js';
export * from '../cache/index.js';
