// The peer of the `pipeline` suite: the same three stages as worker threads chained by
// MessagePorts, as a careful Node developer would write them (ports straight between stages,
// tensors transferred, not cloned).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

interface Job {
  stage: 'source' | 'transform' | 'sink';
  kind: 'small' | 'numbers' | 'tensors' | 'burn';
  count: number;
  input?: MessagePort;
  output?: MessagePort;
}
const job = workerData as Job;

function burn(x: number) {
  let acc = 0;
  for (let i = 0; i < 25_000; i++) acc += Math.sqrt(i + x);
  return acc;
}

parentPort!.once('message', () => {
  if (job.stage === 'source') {
    for (let i = 0; i < job.count; i++) {
      if (job.kind === 'small') job.output!.postMessage({ id: i, label: 'cat', score: 0.5 });
      else if (job.kind === 'tensors') {
        const t = new Float32Array(224 * 224 * 3);
        t[0] = i;
        t[t.length - 1] = i;
        job.output!.postMessage(t, [t.buffer]);
      } else job.output!.postMessage(i);
    }
    job.output!.postMessage(null);
    parentPort!.postMessage('done');
  } else if (job.stage === 'transform') {
    job.input!.on('message', (m) => {
      if (m === null) {
        job.output!.postMessage(null);
        job.input!.close();
        return;
      }
      if (job.kind === 'tensors') {
        (m as Float32Array)[1] = (m as Float32Array)[0]!;
        job.output!.postMessage(m, [(m as Float32Array).buffer as ArrayBuffer]);
      } else job.output!.postMessage(job.kind === 'burn' ? burn(m as number) : m);
    });
  } else {
    let n = 0;
    job.input!.on('message', (m) => {
      if (m === null) {
        job.input!.close();
        parentPort!.postMessage(n);
      } else n++;
    });
  }
});
parentPort!.postMessage('ready');
