// The example project `ringpipe init DIR` writes (also checked in as examples/json-pipeline).
//
// A small regression sweep that runs anywhere in a second: JSON files of samples are flattened into
// a stream, turned into feature vectors, and a linear model is trained by SGD for each combination of
// a grid (learning rate x L2), reporting its loss per epoch; an evaluation joins the trained model and
// the features again (a diamond).

/** pipeline.json; `schemaRef` is the `$schema` path. */
export function pipelineJson(schemaRef: string): string {
  return `{
  "$schema": "${schemaRef}",
  "samples_files": { "type": "file_folder", "path": "./data", "extensions": [".json"], "read": "json" },
  "samples": { "run": "./steps.js#flatten", "inputs": ["samples_files"] },
  "feature_params": { "type": "parameters", "scale": 0.5 },
  "features": { "run": "./steps.js#featurize", "inputs": ["samples", "feature_params"] },
  "model_params": { "type": "parameters", "epochs": 15, "seed": 7 },
  "sweep": { "type": "grid_search_parameters", "learning_rate": [0.2, 0.05], "l2": [0, 0.01] },
  "trained": {
    "run": "./steps.js#train",
    "inputs": [{ "from": "features", "as": "iterable" }, "model_params", "sweep"]
  },
  "evaluated": {
    "run": "./steps.js#evaluate",
    "inputs": [{ "from": "trained", "as": "all" }, { "from": "features", "as": "all" }]
  }
}
`;
}

/** steps.js: the stage functions. */
export const STEPS_JS = `// Stage functions of pipeline.json. Each gets one argument per input, then a context object
// ({ stage, branch, params, index, metadata, options, signal }).
import { dot, mulberry32 } from './lib/math.js';

// One JSON file holds several samples: yield them one by one (a stream).
export function* flatten(file) {
  for (const s of file.samples) yield s;
}

// Called once per sample (the input streams); parameters are passed whole.
export function featurize(sample, params) {
  const x = new Float64Array(sample.x.length + 1);
  sample.x.forEach((v, i) => (x[i] = v * params.scale));
  x[sample.x.length] = 1; // bias
  return { x, y: sample.y };
}

// Called once per branch of the grid. \`features\` can be iterated once per epoch.
// Yields the weights after each epoch, with the epoch's loss as metadata.
export async function* train(features, params, sweep) {
  const rand = mulberry32(params.seed);
  let w;
  for (let epoch = 0; epoch < params.epochs; epoch++) {
    let loss = 0;
    let n = 0;
    for await (const { x, y } of features) {
      w ??= Float64Array.from(x, () => (rand() - 0.5) * 0.1);
      const err = dot(w, x) - y;
      for (let i = 0; i < w.length; i++) w[i] -= sweep.learning_rate * (err * x[i] + sweep.l2 * w[i]);
      loss += err * err;
      n++;
    }
    yield { data: Float64Array.from(w), metadata: { epoch, loss: loss / n } };
  }
}

// The last weights of a branch, scored on every sample.
export function evaluate(history, features) {
  const w = history[history.length - 1];
  let se = 0;
  for (const { x, y } of features) se += (dot(w, x) - y) ** 2;
  return { data: { weights: Array.from(w) }, metadata: { mse: se / features.length } };
}
`;

/** lib/math.js: imported by steps.js (its code takes part in the cache keys too). */
export const MATH_JS = `export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// A small seeded random generator.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
`;

/** package.json: depends on ringpipe (`ringpipeSpec`: a version range or a `file:` path), whose `ringpipe` command its scripts call. */
export function packageJson(ringpipeSpec: string): string {
  return `{
  "name": "ringpipe-example",
  "private": true,
  "type": "module",
  "scripts": {
    "start": "ringpipe run pipeline.json",
    "results": "ringpipe results pipeline.json"
  },
  "dependencies": {
    "ringpipe": ${JSON.stringify(ringpipeSpec)}
  }
}
`;
}

export const GITIGNORE = `.ringpipe/
`;

export const README = `# A ringpipe JSON pipeline

\`pipeline.json\` describes the pipeline; \`steps.js\` holds its functions.

    npm install                         # ringpipe, from package.json
    npm start                           # = npx ringpipe run pipeline.json
    npx ringpipe validate pipeline.json # check it

With ringpipe on your PATH (\`npm install -g ringpipe\`, or \`npx ringpipe\`):

    ringpipe validate pipeline.json     # check it
    ringpipe graph pipeline.json        # draw it (Mermaid; --dot for Graphviz)
    ringpipe run pipeline.json          # run it; a second run loads every stage from the cache
    ringpipe results pipeline.json      # each branch of the grid with its loss and mse
    ringpipe run pipeline.json --set sweep.learning_rate=[0.1]   # try other values

Every stage's output is cached in \`.ringpipe/cache\` by a hash of its definition, its code (and
what the code imports), its parameters and its inputs: change a parameter or a function and only
what depends on it runs again. \`ringpipe cache ls\` shows the cache, \`ringpipe cache gc\` drops
what no pipeline reaches any more.

## Items

A pipeline is a JSON object of named items (names are identifiers):

| type | fields | gives stages |
| --- | --- | --- |
| \`parameters\` | any | the object of its fields, whole |
| \`grid_search_parameters\` | each field a list | one combination per branch: every stage downstream runs once per combination |
| \`random_search_parameters\` | \`count\`, \`seed\`, each field a list or \`{"uniform": [lo, hi]}\`, \`{"log_uniform": [lo, hi]}\`, \`{"int": [lo, hi]}\` | like a grid, \`count\` sampled combinations |
| \`file\` | \`path\`, \`read\` | one record |
| \`file_folder\` | \`path\`, \`extensions\`, \`recursive\`, \`read\` | a stream: one record per file, sorted |
| stage (\`run\`) | \`run: "./module.js#export"\`, \`inputs\` (\`[]\` for none), \`workers\`, \`isolation\`, \`cache\`, \`on_error\` | its outputs |
| \`image_preprocess\`, \`trainer\` | \`inputs\` and the library's options | stages implemented by ringpipe |

\`read\` is \`path\` (default), \`buffer\`, \`text\` or \`json\`.

## How a stage function is called

Arguments come in the order of \`inputs\`, then a context object (\`stage\`, \`branch\`, \`params\`,
\`index\`, \`metadata\`, \`options\`, \`signal\`).

- An input that streams (a folder, or a stage that produced many records) calls the function once
  per record, one record of each streaming input per call; other inputs are passed whole.
- \`{ "from": "x", "as": "all" }\` passes a stream as one array; \`"as": "iterable"\` as an async
  iterable that can be read several times (once per epoch).
- A function returns a value, or is a generator that yields many. Returning \`undefined\` for a
  record sends nothing. Returning or yielding \`{ data, metadata }\` keeps the metadata (a loss,
  a file name) with the record; metadata of a call's inputs is passed on under it.
- \`"workers": 4\` runs the function in 4 worker threads (\`"isolation": "process"\`: processes),
  records in order.
`;

/** data/part-N.json: deterministic samples of y = 3 x0 - 2 x1 + 0.5 x2 + 1 + noise. */
export function dataFiles(files = 4, perFile = 32): Record<string, string> {
  let a = 12345;
  const rand = () => {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    return a / 4294967296;
  };
  const out: Record<string, string> = {};
  for (let f = 0; f < files; f++) {
    const samples = [];
    for (let i = 0; i < perFile; i++) {
      const x = [rand() * 2 - 1, rand() * 2 - 1, rand() * 2 - 1].map((v) => Math.round(v * 1000) / 1000);
      const y = Math.round((3 * x[0]! - 2 * x[1]! + 0.5 * x[2]! + 1 + (rand() - 0.5) * 0.1) * 1000) / 1000;
      samples.push({ x, y });
    }
    out[`data/part-${f}.json`] = JSON.stringify({ samples }) + '\n';
  }
  return out;
}

/** Every file of the example project, by relative path. */
export function exampleProject(schemaRef: string, ringpipeSpec: string): Record<string, string> {
  return {
    'pipeline.json': pipelineJson(schemaRef),
    'steps.js': STEPS_JS,
    'lib/math.js': MATH_JS,
    'package.json': packageJson(ringpipeSpec),
    '.gitignore': GITIGNORE,
    'README.md': README,
    ...dataFiles(),
  };
}
