// The convention test/docs.test.ts runs the documentation by (docs/README.md): what each info string
// means, hidden setup blocks, and what is refused, so a block cannot silently drop out of the run.
import { describe, expect, it } from 'vitest';
import { isRun, outputMatches, parsePage } from './helpers/doc-blocks.js';

const page = (...parts: string[]) => parts.join('\n');

describe('parsePage', () => {
  it('reads languages, file=, norun with its reason, output and timeout=', () => {
    const { blocks } = parsePage(
      page(
        '```ts file=steps.ts', 'export const x = 1;', '```',
        '```ts timeout=90', "console.log('hi');", '```',
        '```text output', 'hi', '```',
        '```sh norun needs a GPU: CUDA_VISIBLE_DEVICES', 'ringpipe demo', '```',
        '```conf', 'listen: 4222', '```',
      ),
    );
    expect(blocks.map((b) => [b.lang, b.file, b.norun, b.output, isRun(b)])).toEqual([
      ['ts', 'steps.ts', undefined, false, false],
      ['ts', undefined, undefined, false, true],
      ['text', undefined, undefined, true, false],
      ['sh', undefined, 'needs a GPU: CUDA_VISIBLE_DEVICES', false, false],
      ['conf', undefined, undefined, false, false],
    ]);
    expect(blocks[1]!.timeoutMs).toBe(90_000);
    expect(blocks[1]!.expect).toBe(blocks[2]);
  });

  it('runs fences inside a setup comment, hidden, and reads its directives', () => {
    const { blocks, directives } = parsePage(page('<!-- setup nats -->', '<!-- setup: a folder of images', '```ts', 'await make();', '```', '-->', '```ts', 'use();', '```'));
    expect(directives).toEqual(['nats']);
    expect(blocks.map((b) => [b.code, b.hidden, isRun(b)])).toEqual([['await make();', true, true], ['use();', false, true]]);
  });

  it('keeps indented blocks (in lists) runnable', () => {
    const { blocks } = parsePage(page('- a point:', '', '  ```ts', '  const a = 1;', '    nested();', '  ```'));
    expect(blocks[0]!.code).toBe('const a = 1;\n  nested();');
  });

  it('refuses what would let a block drop out unnoticed', () => {
    expect(() => parsePage(page('```ts norun', 'x', '```'), 'p.md')).toThrow(/p\.md:1: 'norun' needs its reason/);
    expect(() => parsePage(page('```typescript', 'x', '```'), 'p.md')).toThrow(/p\.md:1: unknown language 'typescript'/);
    expect(() => parsePage(page('```ts skip', 'x', '```'), 'p.md')).toThrow(/'skip' is not part of the convention/);
    expect(() => parsePage(page('```ts', 'x'), 'p.md')).toThrow(/never closed/);
    expect(() => parsePage(page('```text output', 'x', '```'), 'p.md')).toThrow(/must follow a block that runs/);
    expect(() => parsePage(page('<!-- setup gpu -->'), 'p.md')).toThrow(/unknown setup directive 'gpu'/);
  });
});

describe('outputMatches', () => {
  it('compares lines, trailing spaces aside, with ... for any lines', () => {
    expect(outputMatches('a\nb', 'a  \nb\n')).toBe(true);
    expect(outputMatches('a\n...\nd', 'a\nb\nc\nd')).toBe(true);
    expect(outputMatches('a\n...\nd', 'a\nd')).toBe(true);
    expect(outputMatches('a\nb', 'a\nc')).toBe(false);
    expect(outputMatches('a', 'a\nb')).toBe(false);
  });
});
