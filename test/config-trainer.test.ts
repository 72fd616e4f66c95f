// The JSON pipeline `trainer` stage type (src/config/trainer-stage.ts): a grid of learning rates
// trains one model per branch, results per branch, the cache, option checks, GPU binding.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JsonPipeline } from '../src/config/pipeline.js';
import { loadTrainedModel, type TrainedModel } from '../src/config/trainer-stage.js';
import { loadTf } from '../src/train/backend.js';
import { gpuLockFile } from '../src/train/gpu-lease.js';
import { calls, cleanupProjects, cli, makeProject, parseJsonOutput, ROOT } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const FIXTURES = join(ROOT, 'test', 'fixtures', 'config', 'trainer');
const fixtureFiles = () => Object.fromEntries(['model.mjs', 'data.mjs'].map((f) => [f, readFileSync(join(FIXTURES, f), 'utf8')]));

/** Blobs examples, a model, a grid of two learning rates, a trainer stage (with `trained` overrides). */
const gridSpec = (trained: Record<string, unknown> = {}) => ({
  data_params: { type: 'parameters', n: 120, seed: 1 },
  examples: { run: './data.mjs#blobs', inputs: ['data_params'] },
  model_params: { type: 'parameters', hidden: 8 },
  lr_grid: { type: 'grid_search_parameters', learning_rate: [0.05, 0.0001] },
  trained: {
    type: 'trainer',
    inputs: ['examples', 'model_params', 'lr_grid'],
    model: './model.mjs',
    epochs: 3,
    batch_size: 16,
    loss: 'sparseCategoricalCrossentropy',
    validation_split: 0.25,
    shuffle: 32,
    seed: 3,
    ...trained,
  },
});

async function run(project: ReturnType<typeof makeProject>, options: { set?: string[]; concurrency?: number } = {}) {
  const log = project.path(`calls-${Date.now()}-${Math.random()}.log`);
  process.env.RINGPIPE_TEST_CALLS = log;
  try {
    const p = await JsonPipeline.load(project.file, { set: options.set });
    const result = await p.run({ concurrency: options.concurrency });
    return { p, result, calls: calls(log) };
  } finally {
    delete process.env.RINGPIPE_TEST_CALLS;
  }
}

async function trainedData(p: JsonPipeline, branch: string | null): Promise<TrainedModel> {
  const recs = [];
  for await (const r of p.records('trained', branch)) recs.push(r);
  expect(recs).toHaveLength(1);
  return recs[0]!.data as TrainedModel;
}

describe('trainer stage', () => {
  it('a grid of two learning rates trains one model per branch; results list each branch; a re-run hits the cache', async () => {
    const project = makeProject(gridSpec(), fixtureFiles());
    const { p, result, calls: made } = await run(project);
    expect(result.ok, String(result.stages.find((s) => s.error)?.error)).toBe(true);
    const trained = result.stages.filter((s) => s.name === 'trained');
    expect(trained.map((s) => [s.status, s.records, s.params.lr_grid!.learning_rate])).toEqual([
      ['computed', 1, 0.05],
      ['computed', 1, 0.0001],
    ]);
    expect(made.filter((l) => l.startsWith('createModel'))).toHaveLength(2);
    const byLr = new Map<number, { meta: Record<string, unknown>; data: TrainedModel }>();
    for (const s of trained) {
      expect(s.metadata).toMatchObject({ training: 'completed', epochs: 3, backend: 'wasm' });
      for (const m of ['loss', 'acc', 'val_loss', 'val_acc']) expect(typeof s.metadata![m], m).toBe('number');
      const data = await trainedData(p, s.branch);
      // the grid's learning rate reached the optimizer; the parameter items were merged for the factory
      expect(data.settings).toEqual({ epochs: 3, batchSize: 16, learningRate: s.params.lr_grid!.learning_rate });
      expect(data.params).toEqual({ hidden: 8, learning_rate: s.params.lr_grid!.learning_rate });
      // 120 records, the last quarter held out: 90 training examples a epoch, in batches of 16
      expect(data.history.map((h) => [h.epoch, h.samples, h.steps])).toEqual([
        [1, 90, 6],
        [2, 90, 6],
        [3, 90, 6],
      ]);
      expect(data.metrics).toEqual(data.history[2]!.metrics);
      expect(Object.keys(data.model.files).sort()).toEqual(['model.json', 'weights.bin']);
      byLr.set(s.params.lr_grid!.learning_rate as number, { meta: s.metadata!, data });
    }
    const fast = byLr.get(0.05)!;
    const slow = byLr.get(0.0001)!;
    expect(fast.meta.loss as number).toBeLessThan(slow.meta.loss as number);
    expect(fast.meta.val_acc as number).toBeGreaterThanOrEqual(0.8);

    // the saved model is the trained one
    const { tf } = await loadTf();
    const model = await loadTrainedModel(fast.data);
    const examples = [];
    for await (const r of p.records('examples')) examples.push(r.data as { x: number[]; y: number });
    const predicted = tf.tidy(() => Array.from((model.predict(tf.tensor2d(examples.map((e) => e.x))) as import('@tensorflow/tfjs').Tensor).argMax(-1).dataSync()));
    model.dispose();
    expect(predicted.filter((c, i) => c === examples[i]!.y).length / examples.length).toBeGreaterThanOrEqual(0.8);

    // `ringpipe results` lists each branch with its metrics
    const res = parseJsonOutput((await cli(['results', project.file, '--json'])).stdout).results;
    expect(res.map((r: { stage: string; params: { lr_grid: { learning_rate: number } }; status: string }) => [r.stage, r.params.lr_grid.learning_rate, r.status])).toEqual([
      ['trained', 0.05, 'cached'],
      ['trained', 0.0001, 'cached'],
    ]);
    expect(res[0].metadata).toEqual(fast.meta);
    const table = (await cli(['results', project.file])).stdout;
    for (const col of ['lr_grid.learning_rate', 'training', 'loss', 'acc', 'val_loss', 'val_acc']) expect(table).toContain(col);

    // a second run trains nothing
    const again = await run(project);
    expect(again.result.stages.map((s) => s.status)).toEqual(['cached', 'cached', 'cached']);
    expect(again.calls.filter((l) => l.startsWith('createModel'))).toHaveLength(0);
  });

  it("the cache key covers the model module's code, not where the trainer runs", async () => {
    const project = makeProject(gridSpec(), fixtureFiles());
    const keys = async (set: string[] = []) => {
      const plan = await (await JsonPipeline.load(project.file, { set })).plan();
      return Object.fromEntries(['examples', 'trained'].map((n) => [n, plan.byItem.get(n)!.map((x) => x.key)]));
    };
    const before = await keys();
    expect(await keys(['trained.isolation=process', 'trained.gpus=[0]'])).toEqual(before);
    expect((await keys(['trained.epochs=4'])).trained).not.toEqual(before.trained);
    writeFileSync(project.path('model.mjs'), readFileSync(project.path('model.mjs'), 'utf8') + '\n// changed\n');
    const after = await keys();
    expect(after.examples).toEqual(before.examples);
    expect(after.trained[0]).not.toBe(before.trained[0]);
    expect(after.trained[1]).not.toBe(before.trained[1]);
  });

  it('a stream of batches with epoch markers; a parameter overrides epochs; a validation set from a module; restore_best', async () => {
    const project = makeProject(
      {
        data_params: { type: 'parameters', n: 90, seed: 1, epochs: 3, size: 30 },
        batches: { run: './data.mjs#batches', inputs: ['data_params'] },
        model_params: { type: 'parameters', hidden: 8, epochs: 2, learningRate: 0.05 },
        trained: {
          type: 'trainer',
          inputs: ['batches', 'model_params'],
          model: './model.mjs#createModel',
          epochs: 5,
          loss: 'sparseCategoricalCrossentropy',
          validation: { module: './data.mjs', export: 'validationSet', args: { n: 30 } },
          restore_best: true,
        },
      },
      fixtureFiles(),
    );
    const { p, result } = await run(project);
    expect(result.ok, String(result.stages.find((s) => s.error)?.error)).toBe(true);
    const data = await trainedData(p, null);
    expect(data.settings).toEqual({ epochs: 2, learningRate: 0.05 });
    expect(data.history.map((h) => [h.epoch, h.samples, h.steps])).toEqual([
      [1, 90, 3],
      [2, 90, 3],
    ]);
    expect(Object.keys(data.metrics)).toEqual(['loss', 'acc', 'val_loss', 'val_acc']);
    expect(data.best).toMatchObject({ metric: 'val_loss' });
    expect(result.stages.at(-1)!.metadata).toMatchObject({ epochs: 2, best_epoch: data.best!.epoch, best_val_loss: data.best!.value });
  });

  it('early stopping ends training at an epoch end; the artifact says why', async () => {
    const project = makeProject(gridSpec({ epochs: 50, early_stopping: { monitor: 'loss', patience: 1, min_delta: 100 } }), fixtureFiles());
    const { p, result } = await run(project, { set: ['lr_grid.learning_rate=[0.05]'] });
    expect(result.ok, String(result.stages.find((s) => s.error)?.error)).toBe(true);
    expect(result.stages.at(-1)!.metadata).toMatchObject({ training: 'stopped', epochs: 2, best_epoch: 1 });
    const data = await trainedData(p, result.stages.at(-1)!.branch);
    expect(data.stopReason).toMatch(/^early stopping: loss did not improve for 1 epoch/);
  });

  it('a failing branch fails alone, with the error; the other branch trains', async () => {
    const project = makeProject({ ...gridSpec(), lr_grid: { type: 'grid_search_parameters', dims: [4, 5] } }, fixtureFiles());
    const { result } = await run(project);
    expect(result.ok).toBe(false);
    const [ok, bad] = result.stages.filter((s) => s.name === 'trained');
    expect(ok!.status).toBe('computed');
    expect(bad!.status).toBe('failed');
    expect(bad!.error).toMatchObject({ code: 'ERR_STAGE_FAILED', stage: 'trained', branch: bad!.branch });
    expect(bad!.error!.message).toMatch(/^stage 'trained' \[\w+\]: 'trainer' failed: .*each example has shape \[5\]/);
  });

  it('bad options are refused when the pipeline is loaded, naming the item and the field', async () => {
    const base = { type: 'trainer', inputs: ['examples'], model: './model.mjs' };
    const project = makeProject(
      {
        examples: { run: './data.mjs#blobs', inputs: [] },
        p: { type: 'parameters', lr: 1 },
        t_epochs: { ...base, epochs: 0 },
        t_unknown: { ...base, batchsize: 16 },
        t_nomodel: { type: 'trainer', inputs: ['examples'] },
        t_export: { ...base, model: './model.mjs#nope' },
        t_factory: { ...base, model: './data.mjs' },
        t_missing: { ...base, model: './missing.mjs' },
        t_nested: { ...base, early_stopping: { patiense: 2 } },
        t_enum: { ...base, optimizer: 'adamw' },
        t_gpus: { ...base, gpus: [0] },
        t_two: { ...base, inputs: ['examples', 'examples', 'p'] },
        t_none: { ...base, inputs: ['p'] },
        t_each: { ...base, inputs: [{ from: 'examples', as: 'each' }] },
        t_val: { ...base, validation: './data.mjs#nothing' },
        t_valobj: { ...base, validation: { module: './data.mjs', exprt: 'validationSet' } },
        t_gpulist: { ...base, gpus: 'some', isolation: 'process' },
      },
      fixtureFiles(),
    );
    const err = await JsonPipeline.load(project.file).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONFIG' });
    const found = Object.fromEntries(err.issues.map((i: { item: string; field: string; message: string }) => [i.item, [i.field, i.message]]));
    expect(found).toEqual({
      t_epochs: ['epochs', 'must be >= 1'],
      t_unknown: ['batchsize', expect.stringMatching(/^unknown option 'batchsize' of a 'trainer' stage \(did you mean 'batch_size'\?\) \(its options: model, epochs, batch_size, /)],
      t_nomodel: ['model', "missing option 'model'"],
      t_export: ['model', "module './model.mjs' has no export 'nope' (it exports: createModel, other)"],
      t_factory: ['model', "module './data.mjs' has no export 'createModel' or 'default' (it exports: batches, blobs, validationSet)"],
      t_missing: ['model', expect.stringMatching(/^module '.\/missing.mjs' does not exist/)],
      t_nested: ['early_stopping.patiense', "unknown option 'early_stopping.patiense' of a 'trainer' stage"],
      t_enum: ['optimizer', expect.stringMatching(/^must be one of "adam", "sgd"/)],
      t_gpus: ['gpus', expect.stringMatching(/needs "isolation": "process"/)],
      t_two: ['inputs', "a 'trainer' stage takes 1 data input (a stage, file or file_folder item) besides parameter items; got 2 ('examples', 'examples')"],
      t_none: ['inputs', expect.stringMatching(/takes 1 data input .* got 0$/)],
      t_each: ['inputs.0.as', 'a \'trainer\' stage reads its data input whole: "as" must be "iterable" or "all" (default "iterable"), not "each"'],
      t_val: ['validation', "module './data.mjs' has no export 'nothing' (it exports: batches, blobs, validationSet)"],
      t_valobj: ['validation', 'must be "./module.js#export" or { "module": "./module.js", "export": name, "args": value }'],
      t_gpulist: ['gpus', 'must be "all" or a list of CUDA device indexes (integers >= 0, each once)'],
    });
    expect(err.issues).toHaveLength(Object.keys(found).length); // one issue per item
    // the CLI says the same, with exit code 2
    project.write({ examples: { run: './data.mjs#blobs', inputs: [] }, trained: { ...base, epochs: 0 } });
    const v = await cli(['validate', project.file]);
    expect(v.code).toBe(2);
    expect(v.stderr).toContain("item 'trained', field 'epochs': must be >= 1");
  });

  it('isolation "process" with gpus: the trainer process takes a GPU no one else holds (CUDA_VISIBLE_DEVICES)', async () => {
    const project = makeProject(gridSpec({ isolation: 'process', gpus: [0, 1], epochs: 1 }), fixtureFiles());
    const held = gpuLockFile(0, tmpdir());
    writeFileSync(held, String(process.pid)); // GPU 0 is taken by "another trainer": this process
    try {
      const { p, result } = await run(project, { set: ['lr_grid.learning_rate=[0.05]'] });
      expect(result.ok, String(result.stages.find((s) => s.error)?.error)).toBe(true);
      const branch = result.stages.at(-1)!.branch;
      const data = await trainedData(p, branch);
      expect(data.backend?.cudaVisibleDevices).toBe('1');
      expect(existsSync(gpuLockFile(1, tmpdir()))).toBe(false); // given back
    } finally {
      rmSync(held, { force: true });
    }
  });

  it('examples/json-pipeline/trainer.json runs: one model per learning rate, on the features pipeline.json computes too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringpipe-example-'));
    try {
      cpSync(join(ROOT, 'examples', 'json-pipeline'), dir, { recursive: true, filter: (src) => !src.includes('.ringpipe') });
      const p = await JsonPipeline.load(join(dir, 'trainer.json'));
      const result = await p.run();
      expect(result.ok, String(result.stages.find((s) => s.error)?.error)).toBe(true);
      const [fast, slow] = result.stages.filter((s) => s.name === 'trained').map((s) => s.metadata as Record<string, number>);
      expect(fast).toMatchObject({ training: 'completed', epochs: 20 });
      expect(fast!.val_loss).toBeLessThan(slow!.val_loss!);
      expect(fast!.val_loss).toBeLessThan(0.1);
      // the features are the same artifacts as pipeline.json's
      const features = (await (await JsonPipeline.load(join(dir, 'pipeline.json'))).status()).find((s) => s.name === 'features')!;
      expect(features.manifest).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
