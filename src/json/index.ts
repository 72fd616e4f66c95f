/**
 * `ringpipe/json`: pipelines described in JSON (Pipetree's model: parameters, grid and random
 * search items, file sources, stages naming a function), planned into branches and run locally or
 * on a cluster, with every stage's output cached by content (`FsArtifactStore`).
 *
 * @example
 * import { JsonPipeline } from 'ringpipe/json';
 * const pipeline = await JsonPipeline.load('pipeline.json');
 * const result = await pipeline.run();   // a second run loads every stage from the cache
 *
 * @packageDocumentation
 */

/** JSON pipelines: load, validate, plan, run with the cache (`JsonPipeline`), the library stages. */
export * from '../config/index.js';
/** The content-addressed artifact cache (`FsArtifactStore`), its record files and hashes. */
export * from '../cache/index.js';
