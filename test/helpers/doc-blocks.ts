// The code blocks of a Markdown page, as test/docs.test.ts runs them (the convention is written out in
// docs/README.md, "How these pages are tested"). A fence's info string is its language, then words:
//   file=NAME      write the block to NAME in the page's folder (a module other blocks import); not run
//   norun REASON   not run here; the reason (the rest of the line) is required
//   output         the text a block prints: compared with the output of the run block just above it
//   timeout=S      seconds a run block may take (default 60)
// Fences inside a `<!-- setup: what they make ... -->` comment are hidden from readers and run like
// the others; `<!-- setup nats -->` gives the page a directive (`nats`: a nats-server for its blocks).

/** Languages whose blocks run: TypeScript and JavaScript with tsx, shell with bash. */
export const RUN_LANGS = ['ts', 'js', 'sh'] as const;
/** Languages shown as text: configuration of other programs, output, diagrams. JSON must parse. */
export const TEXT_LANGS = ['json', 'conf', 'text', 'mermaid', 'dot', 'csv', ''] as const;

export interface DocBlock {
  /** Line of the opening fence, 1-based. */
  line: number;
  lang: string;
  code: string;
  /** Inside a `<!-- setup -->` comment. */
  hidden: boolean;
  file?: string;
  /** Why the block does not run here. */
  norun?: string;
  /** The block is the expected output of the run block above it. */
  output: boolean;
  timeoutMs: number;
  /** For a run block: the output block that follows it. */
  expect?: DocBlock;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*(.*)$/;

export interface DocPage {
  blocks: DocBlock[];
  /** Words of the page's setup comments (e.g. `nats`). */
  directives: string[];
}

/** Directives a setup comment may carry. */
export const DIRECTIVES = ['nats'] as const;

/** Parses `markdown` into its fenced blocks; throws naming the line for an info string outside the convention. */
export function parsePage(markdown: string, page = 'page'): DocPage {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  const directives: string[] = [];
  let hidden = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const setup = hidden ? null : /^\s*<!--\s*setup\b(.*)$/.exec(l);
    if (setup) {
      // `<!-- setup: what it makes` describes hidden blocks; `<!-- setup nats -->` gives directives.
      const rest = setup[1]!.replace(/-->.*/, '').trim();
      for (const word of rest.startsWith(':') ? [] : rest.split(/\s+/).filter(Boolean)) {
        if (!(DIRECTIVES as readonly string[]).includes(word)) throw new Error(`${page}:${i + 1}: unknown setup directive '${word}' (known: ${DIRECTIVES.join(', ')})`);
        directives.push(word);
      }
      hidden = !l.includes('-->');
      continue;
    }
    if (hidden && l.includes('-->')) {
      hidden = false;
      continue;
    }
    const m = FENCE.exec(l);
    if (!m) continue;
    const [, indent, fence, info] = m as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = lines[j]!;
      if (close.trim().startsWith(fence[0]!.repeat(fence.length)) && close.trim().replace(/[`~]/g, '') === '') break;
      body.push(close.startsWith(indent) ? close.slice(indent.length) : close.trimStart());
    }
    if (j === lines.length) throw new Error(`${page}:${i + 1}: a code fence that is never closed`);
    blocks.push(block(info.trim(), body.join('\n'), i + 1, hidden, page));
    i = j;
  }
  // An output block belongs to the run block just above it.
  for (let k = 0; k < blocks.length; k++) {
    const b = blocks[k]!;
    if (!b.output) continue;
    const prev = blocks[k - 1];
    if (!prev || !isRun(prev)) throw new Error(`${page}:${b.line}: an output block must follow a block that runs`);
    prev.expect = b;
  }
  return { blocks, directives };
}

function block(info: string, code: string, line: number, hidden: boolean, page: string): DocBlock {
  const at = `${page}:${line}`;
  const [lang = '', ...words] = info.split(/\s+/).filter(Boolean);
  if (![...RUN_LANGS, ...TEXT_LANGS].includes(lang as never)) throw new Error(`${at}: unknown language '${lang}' (known: ${[...RUN_LANGS, ...TEXT_LANGS].filter(Boolean).join(', ')})`);
  const b: DocBlock = { line, lang, code, hidden, output: false, timeoutMs: 60_000 };
  for (let w = 0; w < words.length; w++) {
    const word = words[w]!;
    if (word === 'norun') {
      b.norun = words.slice(w + 1).join(' ').trim();
      if (!b.norun) throw new Error(`${at}: 'norun' needs its reason after it`);
      break;
    }
    const [key, value] = word.split('=', 2) as [string, string | undefined];
    if (key === 'file' && value) b.file = value;
    else if (key === 'timeout' && value && Number(value) > 0) b.timeoutMs = Number(value) * 1000;
    else if (key === 'output' && value === undefined) b.output = true;
    else throw new Error(`${at}: '${word}' is not part of the convention (file=NAME, norun REASON, output, timeout=S)`);
  }
  if (b.output && b.lang !== 'text') throw new Error(`${at}: an output block is a 'text' block`);
  if (b.file && b.norun) throw new Error(`${at}: a file= block is written, not run: it needs no 'norun'`);
  return b;
}

/** The block runs (TypeScript, JavaScript or shell, neither a file nor norun). */
export function isRun(b: DocBlock): boolean {
  return (RUN_LANGS as readonly string[]).includes(b.lang) && !b.file && !b.norun;
}

/**
 * `actual` matches the documented output: the same lines once trailing spaces are dropped, where a
 * line `...` in the documented text stands for any number of lines.
 */
export function outputMatches(expected: string, actual: string): boolean {
  const want = expected.trimEnd().split('\n').map((l) => l.trimEnd());
  const got = actual.trimEnd().split('\n').map((l) => l.trimEnd());
  const match = (w: number, g: number): boolean => {
    if (w === want.length) return g === got.length;
    if (want[w] === '...') {
      for (let k = g; k <= got.length; k++) if (match(w + 1, k)) return true;
      return false;
    }
    return g < got.length && want[w] === got[g] && match(w + 1, g + 1);
  };
  return match(0, 0);
}
