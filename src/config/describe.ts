// The pipeline's graph as Mermaid and Graphviz DOT text.
import type { Plan } from './plan.js';
import { gridSize, randomCombinations } from './search.js';
import type { PipelineItem } from './types.js';

/** A graph in two text formats. */
export interface GraphText {
  /** Mermaid `flowchart` text (renders in GitHub Markdown). */
  mermaid: string;
  /** Graphviz DOT text. */
  dot: string;
}

interface GNode {
  id: string;
  label: string[];
  shape: 'params' | 'search' | 'file' | 'stage';
}
interface GEdge {
  from: string;
  to: string;
  label?: string;
}

function itemLabel(item: PipelineItem): string[] {
  switch (item.kind) {
    case 'parameters':
      return [item.name, 'parameters'];
    case 'grid':
      return [item.name, `grid: ${gridSize(item.def).toLocaleString('en-US')} branches`];
    case 'random':
      return [item.name, `random search: ${randomCombinations(item.def).length} branches`];
    case 'file':
    case 'folder':
      return [item.name, `${item.type} ${String(item.def.path)}`];
    case 'library':
      return [item.name, item.type + (Number(item.def.workers ?? 1) > 1 ? ` x${String(item.def.workers)}` : '')];
    default:
      return [item.name, String(item.def.run) + (Number(item.def.workers ?? 1) > 1 ? ` x${String(item.def.workers)}` : '')];
  }
}

function shapeOf(item: PipelineItem): GNode['shape'] {
  return item.kind === 'parameters' ? 'params' : item.kind === 'grid' || item.kind === 'random' ? 'search' : item.kind === 'file' || item.kind === 'folder' ? 'file' : 'stage';
}

/** The graph of items (one node per item). */
export function describeItems(items: PipelineItem[]): GraphText {
  const nodes: GNode[] = items.map((i) => ({ id: i.name, label: itemLabel(i), shape: shapeOf(i) }));
  const edges: GEdge[] = items.flatMap((i) => i.inputs.map((ref) => ({ from: ref.from, to: i.name, ...(ref.as !== 'each' ? { label: ref.as } : {}) })));
  return render(nodes, edges);
}

/** The graph of the plan: one node per item and branch. */
export function describePlan(plan: Plan): GraphText {
  const id = (n: { item: PipelineItem; branch: string | null }) => (n.branch ? `${n.item.name}_${n.branch}` : n.item.name);
  const nodes: GNode[] = plan.nodes.map((n) => {
    const label = itemLabel(n.item);
    if (n.branch) {
      const mine = n.item.kind === 'grid' || n.item.kind === 'random' ? n.params[n.item.name] : undefined;
      label.splice(1, 1, mine ? Object.entries(mine).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') : `[${n.branch}]`);
    }
    return { id: id(n), label, shape: shapeOf(n.item) };
  });
  const edges: GEdge[] = plan.nodes.flatMap((n) =>
    n.inputs.map((src, i) => {
      const as = n.item.inputs[i]!.as;
      return { from: id(src), to: id(n), ...(as !== 'each' ? { label: as } : {}) };
    }),
  );
  return render(nodes, edges);
}

function render(nodes: GNode[], edges: GEdge[]): GraphText {
  const mq = (s: string) => s.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
  const open: Record<GNode['shape'], [string, string]> = { params: ['[/', '/]'], search: ['{{', '}}'], file: ['[(', ')]'], stage: ['[', ']'] };
  const mermaid = [
    'flowchart LR',
    ...nodes.map((n) => `  ${n.id}${open[n.shape][0]}"${n.label.map(mq).join('<br/>')}"${open[n.shape][1]}`),
    ...edges.map((e) => `  ${e.from} -->${e.label ? `|${e.label}|` : ''} ${e.to}`),
  ].join('\n');
  const dq = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const shape: Record<GNode['shape'], string> = { params: 'parallelogram', search: 'hexagon', file: 'cylinder', stage: 'box' };
  const dot = [
    'digraph pipeline {',
    '  rankdir=LR;',
    '  node [fontname="Helvetica"];',
    ...nodes.map((n) => `  "${dq(n.id)}" [label="${n.label.map(dq).join('\\n')}", shape=${shape[n.shape]}];`),
    ...edges.map((e) => `  "${dq(e.from)}" -> "${dq(e.to)}"${e.label ? ` [label="${dq(e.label)}"]` : ''};`),
    '}',
  ].join('\n');
  return { mermaid: mermaid + '\n', dot: dot + '\n' };
}
