// The graph as text for diagrams (MiniPipe's diagram()): Mermaid and Graphviz DOT.
import type { Graph } from './graph.js';

/** A graph as text for diagrams (MiniPipe's `diagram()`). */
export interface GraphDescription {
  mermaid: string;
  dot: string;
}

export function describeGraph(graph: Graph): GraphDescription {
  const id = (i: number) => `s${i}`;
  const label = (i: number) => {
    const n = graph.nodes[i]!;
    const extra = [n.segment.kind, n.options.workers > 1 ? `x${n.options.workers}` : '', n.options.isolation !== 'thread' ? n.options.isolation : '']
      .filter(Boolean)
      .join(', ');
    return `${n.segment.name} (${extra})`;
  };
  const edges: [number, number, string][] = [];
  graph.nodes.forEach((w, wi) => {
    for (const st of w.outputs) {
      graph.nodes.forEach((r, ri) => {
        if (r.inputs.includes(st)) edges.push([wi, ri, st.mode === 'balance' ? `${st.name} (balance)` : st.name]);
      });
    }
  });
  const esc = (s: string) => s.replace(/"/g, '\\"');
  const mermaid = [
    'flowchart LR',
    ...graph.nodes.map((_, i) => `  ${id(i)}["${esc(label(i))}"]`),
    ...edges.map(([a, b, s]) => `  ${id(a)} -->|"${esc(s)}"| ${id(b)}`),
  ].join('\n');
  const dot = [
    'digraph ringpipe {',
    '  rankdir=LR;',
    ...graph.nodes.map((_, i) => `  ${id(i)} [label="${esc(label(i))}", shape=box];`),
    ...edges.map(([a, b, s]) => `  ${id(a)} -> ${id(b)} [label="${esc(s)}"];`),
    '}',
  ].join('\n');
  return { mermaid, dot };
}
