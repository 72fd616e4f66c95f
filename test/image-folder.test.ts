import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { imageFolder, imageList, imageSource, ImageSourceSegment, selectItems, type ImageItem } from '../src/image/folder.js';
import { parseCsv, parseCsvLabels, parseJsonLabels } from '../src/image/labels.js';

let root: string;
const p = (...parts: string[]) => join(root, ...parts);
const touch = async (...parts: string[]) => {
  await mkdir(join(root, ...parts.slice(0, -1)), { recursive: true });
  await writeFile(join(root, ...parts), 'x');
};
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ringpipe-image-folder-'));
  // Class folders (deliberately created out of order), nested images, non-images, hidden files.
  await touch('ds', 'zebra', 'z1.jpg');
  await touch('ds', 'cat', 'b.JPG');
  await touch('ds', 'cat', 'a.png');
  await touch('ds', 'cat', 'notes.txt');
  await touch('ds', 'cat', '.hidden.jpg');
  await touch('ds', 'cat', 'sub', 'deep', 'c.webp');
  await touch('ds', 'dog', 'd.jpeg');
  await touch('ds', 'dog', 'e.tiff');
  await touch('ds', '.git', 'x.jpg');
  await touch('ds', 'top-level.jpg'); // not in a class folder: ignored in class mode
  await mkdir(p('ds', 'empty'));
  // Symlink cycle inside a class folder must not hang the walk.
  await symlink(p('ds', 'dog'), p('ds', 'dog', 'loop'));
  // A symlink to a folder elsewhere is followed.
  await symlink(p('ds', 'cat', 'sub'), p('ds', 'zebra', 'linked'));
  // Label lists.
  await writeFile(p('ds', 'labels.csv'), 'Path,Class\r\n"zebra/z1.jpg",horse\r\ncat/a.png,cat\r\n"dog/d.jpeg",dog\r\n\r\n');
  await writeFile(p('ds', 'labels.json'), JSON.stringify([{ path: 'cat/a.png', label: 3 }, { path: 'dog/d.jpeg', label: 0 }]));
  // A big flat folder for shuffling and sharding.
  await Promise.all(Array.from({ length: 103 }, (_, i) => touch('flat', `img${String(i).padStart(3, '0')}.png`)));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('imageFolder: what it does not use is reported', () => {
  beforeAll(async () => {
    await touch('odd', 'cat', 'a.jpg');
    await touch('odd', 'cat', 'notes.txt');
    await touch('odd', 'cat', '.hidden.jpg');
    await mkdir(p('odd', 'cat', 'folder.jpg'));
    await touch('odd', 'cat', 'folder.jpg', 'inner.jpg');
    await symlink('nowhere.jpg', p('odd', 'cat', 'dangling.jpg'));
    await symlink('..', p('odd', 'cat', 'loop'));
    await symlink('self.jpg', p('odd', 'cat', 'self.jpg'));
    await symlink('a.jpg', p('odd', 'cat', 'alias.jpg'));
    await touch('odd', 'top.jpg');
  });
  const rel = (list: { path: string; reason: string }[] | undefined) => (list ?? []).map((u) => [u.path.slice(p('odd').length + 1), u.reason]);

  it("labels 'folder': dangling links, link loops, folders named like images, other extensions, hidden files, files outside the class folders", async () => {
    const ds = await imageFolder(p('odd'));
    expect(ds.items.map((i) => i.path!.slice(p('odd').length + 1))).toEqual(['cat/a.jpg', 'cat/alias.jpg', 'cat/folder.jpg/inner.jpg']);
    expect(rel(ds.unused)).toEqual([
      ['cat/.hidden.jpg', "hidden (its name starts with '.'; includeHidden lists it)"],
      ['cat/dangling.jpg', 'a dangling symbolic link: its target nowhere.jpg does not exist'],
      ['cat/folder.jpg', 'a folder, not an image file, although its name ends in .jpg: the images in it are listed'],
      ['cat/loop', 'a symbolic link to a folder above it: a loop, not followed'],
      ['cat/notes.txt', expect.stringMatching(/^not an image by its extension \(listed: \.jpg \.jpeg/)],
      ['cat/self.jpg', 'a symbolic link loop (-> self.jpg)'],
      ['top.jpg', "outside every class folder (labels: 'folder' takes the images in the first-level folders)"],
    ]);
  });

  it("labels 'none' and followSymlinks false", async () => {
    const none = await imageFolder(p('odd'), { labels: 'none' });
    expect(rel(none.unused).map(([path]) => path)).toEqual(['cat/.hidden.jpg', 'cat/dangling.jpg', 'cat/folder.jpg', 'cat/loop', 'cat/notes.txt', 'cat/self.jpg']);
    const noLinks = await imageFolder(p('odd'), { labels: 'none', followSymlinks: false });
    expect(rel(noLinks.unused).filter(([path]) => path === 'cat/alias.jpg')).toEqual([['cat/alias.jpg', 'a symbolic link (-> a.jpg); followSymlinks is false']]);
  });

  it('the source segment reports them at teardown', async () => {
    const seg = new ImageSourceSegment();
    seg.setup({ dir: p('odd') });
    expect(await collect(seg.run())).toHaveLength(3);
    expect(seg.teardown().unused.map((u) => u.path.slice(p('odd').length + 1))).toContain('cat/dangling.jpg');
  });
});

describe('imageFolder', () => {
  it('class-per-folder: sorted classes, recursive, extension filter, no hidden files', async () => {
    const ds = await imageFolder(p('ds'));
    expect(ds.root).toBe(p('ds'));
    expect(ds.classes).toEqual(['cat', 'dog', 'empty', 'zebra']);
    const rel = ds.items.map((i) => [i.path!.slice(p('ds').length + 1), i.label, i.className]);
    expect(rel).toEqual([
      ['cat/a.png', 0, 'cat'],
      ['cat/b.JPG', 0, 'cat'],
      ['cat/sub/deep/c.webp', 0, 'cat'],
      ['dog/d.jpeg', 1, 'dog'],
      ['dog/e.tiff', 1, 'dog'],
      // dog/loop -> dog is a cycle (it points to an ancestor): skipped.
      ['zebra/linked/deep/c.webp', 3, 'zebra'],
      ['zebra/z1.jpg', 3, 'zebra'],
    ]);
    ds.items.forEach((item, i) => expect(item.index).toBe(i));
  });

  it('options: extensions, hidden files, symlinks off, pinned classes', async () => {
    const png = await imageFolder(p('ds'), { extensions: ['png', '.WEBP'] });
    expect(png.items.map((i) => i.path!.slice(p('ds').length + 1))).toEqual(['cat/a.png', 'cat/sub/deep/c.webp', 'zebra/linked/deep/c.webp']);
    const hidden = await imageFolder(p('ds'), { includeHidden: true });
    expect(hidden.classes).toEqual(['.git', 'cat', 'dog', 'empty', 'zebra']);
    expect(hidden.items.some((i) => i.path!.endsWith('.hidden.jpg'))).toBe(true);
    const noLinks = await imageFolder(p('ds'), { followSymlinks: false });
    expect(noLinks.items.some((i) => i.path!.includes('linked'))).toBe(false);
    expect(noLinks.items.length).toBe(6);
    const pinned = await imageFolder(p('ds'), { classes: ['zebra', 'dog', 'cat', 'empty', 'lion'] });
    expect(pinned.items.find((i) => i.className === 'zebra')!.label).toBe(0);
    expect(pinned.items.find((i) => i.className === 'cat')!.label).toBe(2);
    await expect(imageFolder(p('ds'), { classes: ['cat', 'dog'] })).rejects.toThrow(/not one of the given classes/);
  });

  it("labels 'none': every image recursively, label -1", async () => {
    const ds = await imageFolder(p('ds'), { labels: 'none', followSymlinks: false });
    expect(ds.classes).toEqual([]);
    expect(ds.items.map((i) => i.path!.slice(p('ds').length + 1))).toEqual(['cat/a.png', 'cat/b.JPG', 'cat/sub/deep/c.webp', 'dog/d.jpeg', 'dog/e.tiff', 'top-level.jpg', 'zebra/z1.jpg']);
    const withLinks = await imageFolder(p('ds'), { labels: 'none' });
    expect(withLinks.items.length).toBe(8); // + zebra/linked/deep/c.webp; the dog/loop cycle is cut
    expect(ds.items.every((i) => i.label === -1 && i.className === undefined)).toBe(true);
  });

  it('labels from a CSV list (header, quotes, CRLF) and a JSON list', async () => {
    const csv = await imageFolder(p('ds'), { labels: { file: 'labels.csv' } });
    expect(csv.classes).toEqual(['cat', 'dog', 'horse']);
    expect(csv.items.map((i) => [i.index, i.path, i.label, i.className])).toEqual([
      [0, p('ds', 'zebra/z1.jpg'), 2, 'horse'],
      [1, p('ds', 'cat/a.png'), 0, 'cat'],
      [2, p('ds', 'dog/d.jpeg'), 1, 'dog'],
    ]);
    const json = await imageFolder(p('ds'), { labels: { file: p('ds', 'labels.json') } });
    expect(json.classes).toEqual([]);
    expect(json.items.map((i) => [i.label, i.className])).toEqual([
      [3, undefined],
      [0, undefined],
    ]);
  });

  it('clear errors for bad folders and lists', async () => {
    await expect(imageFolder(p('nope'))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(imageFolder(p('flat'))).rejects.toThrow(/no class folder/);
    await expect(imageFolder(p('ds', 'empty'), { labels: 'none' })).rejects.toThrow(/no image/);
    await expect(imageFolder(p('ds'), { labels: { file: 'missing.csv' } })).rejects.toThrow(/cannot be read/);
    await expect(imageFolder(p('ds'), { labels: { file: 'cat/notes.txt' } })).rejects.toThrow(/labelsFormat|CSV from JSON/);
    await expect(imageFolder(p('ds'), { extensions: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('label list parsing', () => {
  it('CSV: quoting, escaped quotes, commas and newlines in fields, BOM, no header', () => {
    expect(parseCsv('\ufeffa,"b,c"\n"say ""hi""","x\ny"\n')).toEqual([
      ['a', 'b,c'],
      ['say "hi"', 'x\ny'],
    ]);
    expect(parseCsvLabels('a.jpg,7\nb.jpg,cat\n')).toEqual([
      { path: 'a.jpg', label: 7 },
      { path: 'b.jpg', label: 'cat' },
    ]);
    expect(parseCsvLabels('id,label,file\n1,dog,x.png\n')).toEqual([{ path: 'x.png', label: 'dog' }]);
    expect(() => parseCsvLabels('a.jpg\n')).toThrow(/needs a path and a label/);
    expect(() => parseCsv('"open')).toThrow(/unterminated/);
  });

  it('JSON: array of objects, array of pairs, object map', () => {
    expect(parseJsonLabels('[["a.jpg", "cat"], ["b.jpg", 2]]')).toEqual([
      { path: 'a.jpg', label: 'cat' },
      { path: 'b.jpg', label: 2 },
    ]);
    expect(parseJsonLabels('{"a.jpg": 1}')).toEqual([{ path: 'a.jpg', label: 1 }]);
    expect(() => parseJsonLabels('[{"path": "a.jpg", "label": -1}]')).toThrow(/non-negative integer/);
    expect(() => parseJsonLabels('[{"label": 1}]')).toThrow(/no path/);
    expect(() => parseJsonLabels('{oops')).toThrow(/invalid JSON/);
    expect(() => parseJsonLabels('42')).toThrow(/expected an array/);
  });
});

describe('imageList', () => {
  it('paths and buffers, class names sorted, missing labels -1', () => {
    const buf = new Uint8Array([1, 2, 3]);
    const ds = imageList(['a.jpg', buf, { path: 'b.jpg', label: 'zebra' }, { buffer: buf, label: 'ant' }], { root: '/data' });
    expect(ds.classes).toEqual(['ant', 'zebra']);
    expect(ds.items).toEqual([
      { index: 0, path: '/data/a.jpg', label: -1 },
      { index: 1, buffer: buf, label: -1 },
      { index: 2, path: '/data/b.jpg', label: 1, className: 'zebra' },
      { index: 3, buffer: buf, label: 0, className: 'ant' },
    ]);
    expect(imageList([{ path: '/x.png', label: 4 }]).items[0]).toEqual({ index: 0, path: '/x.png', label: 4 });
    expect(() => imageList([42 as never])).toThrow(InvalidArgumentError);
    expect(() => imageList([{ path: 'a', label: 1.5 }])).toThrow(InvalidArgumentError);
    expect(() => imageList([{ path: 'a', label: 'cat' }], { classes: ['dog'] })).toThrow(/not one of the given classes/);
  });
});

describe('shuffle and shard', () => {
  const items = Array.from({ length: 103 }, (_, i) => i);

  it('no shuffle keeps the order; shuffle is a seeded permutation per epoch', () => {
    expect(selectItems(items)).toEqual(items);
    const a = selectItems(items, { shuffle: true, seed: 1 });
    expect(a).not.toEqual(items);
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(selectItems(items, { shuffle: true, seed: 1 })).toEqual(a);
    expect(selectItems(items, { shuffle: true, seed: 2 })).not.toEqual(a);
    expect(selectItems(items, { shuffle: true, seed: 1, epoch: 1 })).not.toEqual(a);
  });

  it('shards are disjoint, cover the dataset exactly and differ in size by at most 1', () => {
    for (const count of [1, 2, 3, 7, 103, 150]) {
      for (const shuffle of [false, true]) {
        const shards = Array.from({ length: count }, (_, index) => selectItems(items, { shuffle, seed: 9, epoch: 4, shard: { index, count } }));
        const all = shards.flat();
        expect(all.length).toBe(items.length);
        expect(new Set(all).size).toBe(items.length);
        const sizes = shards.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('rejects bad ordering options', () => {
    expect(() => selectItems(items, { shard: { index: 3, count: 3 } })).toThrow(InvalidArgumentError);
    expect(() => selectItems(items, { shard: { index: 0, count: 0 } })).toThrow(InvalidArgumentError);
    expect(() => selectItems(items, { seed: -1 })).toThrow(InvalidArgumentError);
    expect(() => selectItems(items, { seed: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => selectItems(items, { epoch: -2 })).toThrow(InvalidArgumentError);
  });
});

describe('imageSource', () => {
  it('yields the shard for several epochs, each with its own order, tagging the epoch', async () => {
    const got: ImageItem[][] = [];
    for (let index = 0; index < 3; index++) {
      got.push(await collect(imageSource({ dir: p('flat'), labels: 'none', shuffle: true, seed: 5, epochs: 2, shard: { index, count: 3 } })));
    }
    for (const epoch of [0, 1]) {
      const all = got.flatMap((g) => g.filter((i) => i.epoch === epoch).map((i) => i.index));
      expect(all.length).toBe(103);
      expect(new Set(all).size).toBe(103);
    }
    const e0 = got[0].filter((i) => i.epoch === 0).map((i) => i.index);
    const e1 = got[0].filter((i) => i.epoch === 1).map((i) => i.index);
    expect(e0).not.toEqual(e1);
    // The index is the canonical dataset index, whatever the shuffle: path and index agree.
    for (const it of got.flat()) expect(it.path).toBe(p('flat', `img${String(it.index).padStart(3, '0')}.png`));
  });

  it('limit, epoch start, explicit inputs, and option errors', async () => {
    const lim = await collect(imageSource({ dir: p('flat'), labels: 'none', limit: 5, epochs: 3 }));
    expect(lim.map((i) => i.index)).toEqual([0, 1, 2, 3, 4]);
    const start = await collect(imageSource({ inputs: ['a.jpg', 'b.jpg'], epoch: 7, epochs: 2 }));
    expect(start.map((i) => [i.epoch, i.index])).toEqual([
      [7, 0],
      [7, 1],
      [8, 0],
      [8, 1],
    ]);
    await expect(collect(imageSource({}))).rejects.toThrow(/exactly one of/);
    await expect(collect(imageSource({ dir: p('flat'), inputs: [] }))).rejects.toThrow(/exactly one of/);
    await expect(collect(imageSource({ inputs: ['a'], epochs: -1 }))).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('its options are plain data (structured-clonable for a worker)', () => {
    const opts = { dir: p('flat'), labels: { file: 'x.csv' }, shuffle: true, seed: 1, shard: { index: 0, count: 2 }, inputs: undefined };
    expect(structuredClone(opts)).toEqual(opts);
  });
});
