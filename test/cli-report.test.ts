// What `ringpipe run` reports besides the stage runs: the record and the stack of a failing call,
// records skipped with their input file, and folder entries that are not used, with the reason.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const failing = (extra: Record<string, unknown> = {}) => ({
  params: { type: 'parameters', n: 4 },
  numbers: { run: './steps.mjs#count', inputs: ['params'] },
  broken: { run: './steps.mjs#boom', inputs: ['numbers'], ...extra },
});

describe('a stage that throws', () => {
  it('plain output: the message, the record (shortened) and the stack of the function', async () => {
    const p = makeProject(failing());
    const r = await cli(['run', p.file, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: stage 'broken': 'boom' failed on record 2: boom on 2\n {2}record 2: 2\n {2}Error: boom on 2\n {6}at boom \(.*steps\.mjs:\d+:\d+\)/m);
  });

  it('--json: code, message, record, input and stack', async () => {
    const r = await cli(['run', makeProject(failing()).file, '--json', '-q']);
    const broken = parseJsonOutput(r.stdout).stages.find((s: { name: string }) => s.name === 'broken');
    expect(broken.error).toEqual({ code: 'ERR_STAGE_FAILED', message: "stage 'broken': 'boom' failed on record 2: boom on 2", record: 2, input: '2', stack: expect.stringMatching(/^Error: boom on 2\n\s+at boom \(/) });
  });

  it('a long record is shortened; in a worker thread the record is read again from the inputs', async () => {
    const p = makeProject(failing({ isolation: 'thread' }), {
      'long.mjs': "export function* rows(p) { for (let i = 0; i < p.n; i++) yield { id: i, text: 'x'.repeat(5000), data: new Float32Array(1000) }; }\nexport function check(r) { if (r.id === 2) throw new Error('bad row ' + r.id); return r.id; }\n",
    });
    p.write({ params: { type: 'parameters', n: 4 }, rows: { run: './long.mjs#rows', inputs: ['params'] }, checked: { run: './long.mjs#check', inputs: ['rows'], isolation: 'thread' } });
    const r = await cli(['run', p.file, '--json', '-q']);
    expect(r.code).toBe(1);
    const { error } = parseJsonOutput(r.stdout).stages.find((s: { name: string }) => s.name === 'checked');
    expect(error.record).toBe(2);
    expect(error.input.length).toBeLessThanOrEqual(240);
    expect(error.input).toMatch(/^\{ id: 2, text: 'x{80}'\.\.\. 4920 more characters, data: Float32Array\(1000\) \[/);
    expect(error.stack).toMatch(/Error: bad row 2\n\s+at check \(.*long\.mjs/);
    const plain = await cli(['run', p.file, '-q']);
    expect(plain.stderr).toMatch(/^ {2}record 2: \{ id: 2, text: 'xxx/m);
    expect(plain.stderr).toMatch(/^ {6}at check \(/m);
  });
});

describe('images: skipped and unused inputs are named', () => {
  async function imageProject() {
    const p = makeProject({});
    mkdirSync(p.path('images/cats'), { recursive: true });
    mkdirSync(p.path('images/dir.jpg'));
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toBuffer();
    writeFileSync(p.path('images/cats/a.jpg'), jpeg);
    writeFileSync(p.path('images/dir.jpg/b.jpg'), jpeg);
    writeFileSync(p.path('images/cats/bad.jpg'), 'not a jpeg');
    writeFileSync(p.path('images/notes.txt'), 'notes');
    writeFileSync(p.path('images/.hidden.jpg'), jpeg);
    symlinkSync('nowhere.jpg', p.path('images/cats/dangling.jpg'));
    symlinkSync('..', p.path('images/cats/loop'));
    symlinkSync('a.jpg', p.path('images/cats/link.jpg'));
    return p;
  }
  const pipeline = (extra: Record<string, unknown> = {}) => ({
    raw: { type: 'file_folder', path: './images', extensions: ['.jpg'] },
    prep: { type: 'image_preprocess', inputs: ['raw'], size: 8, on_error: 'skip', ...extra },
  });
  const unusedExpected = [
    { item: 'raw', path: 'images/.hidden.jpg', reason: "hidden (its name starts with '.')" },
    { item: 'raw', path: 'images/cats/dangling.jpg', reason: 'a dangling symbolic link: its target nowhere.jpg does not exist' },
    { item: 'raw', path: 'images/cats/loop', reason: 'a symbolic link to a folder above it (-> ..): a loop, not followed' },
    { item: 'raw', path: 'images/dir.jpg', reason: 'a folder, not a file, although its name ends in .jpg: its files are listed' },
    { item: 'raw', path: 'images/notes.txt', reason: 'its extension .txt is not one of .jpg' },
  ];

  it('--json: the skipped image with its path and reason; every unused entry with its reason', async () => {
    const p = await imageProject();
    p.write(pipeline());
    const r = await cli(['run', p.file, '--json', '-q']);
    expect(r.code).toBe(0);
    const out = parseJsonOutput(r.stdout);
    expect(out.stages[0]).toMatchObject({ name: 'prep', status: 'computed', records: 3 }); // a.jpg, link.jpg, dir.jpg/b.jpg
    expect(out.stages[0].skipped).toEqual([{ index: 1, path: 'images/cats/bad.jpg', reason: expect.stringMatching(/cannot decode image .*bad\.jpg.*: not an image/) }]);
    expect(out.unusedInputs).toEqual(unusedExpected);
  });

  it('plain output, and with replicas on the engine', async () => {
    const p = await imageProject();
    p.write(pipeline({ workers: 2, isolation: 'thread' }));
    const r = await cli(['run', p.file, '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^skipped +prep: record 1 images\/cats\/bad\.jpg: cannot decode image/m);
    for (const u of unusedExpected) expect(r.stdout).toContain(`unused    raw: ${u.path} (${u.reason})`);
    const v = await cli(['validate', p.file]);
    expect(v.stderr).toContain('unused    raw: images/cats/dangling.jpg (a dangling symbolic link');
  });
});
