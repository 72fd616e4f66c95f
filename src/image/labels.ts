/**
 * Label lists: (path, label) pairs read from a CSV or JSON file, for datasets whose labels are not
 * given by the folder layout.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/** One (path, label) pair as written in a label list. */
export interface LabelEntry {
  /** Path of the image, relative to the dataset root unless absolute. */
  path: string;
  /** A class name, or a non-negative integer class index. */
  label: string | number;
}

const PATH_HEADERS = new Set(['path', 'file', 'filename', 'image', 'img']);
const LABEL_HEADERS = new Set(['label', 'class', 'target', 'category']);

/**
 * Splits CSV text into rows of fields (RFC 4180: `,` separators, `"` quoting with `""` escapes,
 * LF or CRLF line ends, quoted fields may hold commas and newlines). Blank lines are dropped.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let fieldStarted = false;
  const endField = () => {
    row.push(field);
    field = '';
    fieldStarted = false;
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
    } else if (ch === ',') endField();
    else if (ch === '\n') endRow();
    else if (ch === '\r') {
      if (text[i + 1] !== '\n') endRow();
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (quoted) throw new InvalidArgumentError('CSV label list: unterminated quoted field');
  if (field !== '' || row.length) endRow();
  return rows;
}

/**
 * Parses a CSV label list. Column 0 is the path and column 1 the label, unless the first row is a
 * header naming them (case-insensitive: `path`/`file`/`filename`/`image`/`img` and
 * `label`/`class`/`target`/`category`), in which case those columns are used and other columns are
 * ignored. A label made only of digits is a class index; anything else is a class name.
 */
export function parseCsvLabels(text: string, source = 'CSV label list'): LabelEntry[] {
  const rows = parseCsv(text);
  let pathCol = 0;
  let labelCol = 1;
  let start = 0;
  if (rows.length) {
    const head = rows[0].map((f) => f.trim().toLowerCase());
    const p = head.findIndex((f) => PATH_HEADERS.has(f));
    const l = head.findIndex((f) => LABEL_HEADERS.has(f));
    if (p >= 0 && l >= 0) {
      pathCol = p;
      labelCol = l;
      start = 1;
    }
  }
  const out: LabelEntry[] = [];
  for (let r = start; r < rows.length; r++) {
    const row = rows[r];
    const path = row[pathCol]?.trim();
    const label = row[labelCol]?.trim();
    if (!path || label === undefined || label === '') {
      throw new InvalidArgumentError(`${source}: row ${r + 1} needs a path and a label, got ${JSON.stringify(row)}`);
    }
    out.push({ path, label: /^\d+$/.test(label) ? Number(label) : label });
  }
  return out;
}

/**
 * Parses a JSON label list, in any of three shapes:
 * `[{ "path": "a.jpg", "label": "cat" }, ...]`, `[["a.jpg", "cat"], ...]` or `{ "a.jpg": "cat", ... }`.
 * Labels are class names (strings) or non-negative integer class indices.
 */
export function parseJsonLabels(text: string, source = 'JSON label list'): LabelEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`${source}: invalid JSON (${(e as Error).message})`);
  }
  if (!data || typeof data !== 'object') {
    throw new InvalidArgumentError(`${source}: expected an array or an object of path -> label`);
  }
  const pairs: [unknown, unknown][] = Array.isArray(data)
    ? data.map((e: unknown) =>
        Array.isArray(e)
          ? [e[0], e[1]]
          : e && typeof e === 'object'
            ? [(e as { path?: unknown }).path, (e as { label?: unknown }).label]
            : [undefined, undefined],
      )
    : Object.entries(data);
  return pairs.map(([path, label], i) => {
    if (typeof path !== 'string' || !path) throw new InvalidArgumentError(`${source}: entry ${i} has no path`);
    if (typeof label === 'number') {
      if (!Number.isInteger(label) || label < 0) throw new InvalidArgumentError(`${source}: entry ${i} ('${path}') has label ${label}, expected a non-negative integer or a class name`);
      return { path, label };
    }
    if (typeof label !== 'string' || !label) throw new InvalidArgumentError(`${source}: entry ${i} ('${path}') has no label`);
    return { path, label };
  });
}

/** Reads a label list; the format comes from the extension (`.csv`, `.json`) unless given. */
export async function readLabelList(file: string, format?: 'csv' | 'json'): Promise<LabelEntry[]> {
  const fmt = format ?? (extname(file).toLowerCase() === '.json' ? 'json' : extname(file).toLowerCase() === '.csv' ? 'csv' : undefined);
  if (!fmt) throw new InvalidArgumentError(`label list '${file}': cannot tell CSV from JSON by its extension; pass labelsFormat`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(`label list '${file}' cannot be read: ${(e as Error).message}`);
  }
  return fmt === 'json' ? parseJsonLabels(text, `label list '${file}'`) : parseCsvLabels(text, `label list '${file}'`);
}
