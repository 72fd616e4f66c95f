/**
 * The control channel between a sweep and its trainer processes: trainers report readiness and
 * per-epoch metrics, the sweep answers each epoch report with its early-stopping decision. A Unix
 * domain socket (a named pipe on Windows) carrying newline-delimited JSON, so it works from child
 * processes and worker threads alike, whatever the engine's own channels carry.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingpipeError } from '../errors.js';
import type { TrainerCheckpoint } from '../train/checkpoint.js';
import type { EpochDecision, EpochReport, TrainerContext, TrainerReady } from '../train/trainer.js';

/** The control channel failed (`ERR_SWEEP_CONTROL`). */
export class SweepControlError extends RingpipeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SWEEP_CONTROL', message, options);
  }
}

/** What the sweep side handles. */
export interface ControlHandlers {
  ready(trialId: string, info: TrainerReady): void;
  epoch(trialId: string, report: EpochReport): EpochDecision | Promise<EpochDecision>;
  /** A trainer's epoch-end checkpoint (trainer option `checkpoint`); the trainer waits until it returns. */
  checkpoint?(trialId: string, checkpoint: TrainerCheckpoint): void | Promise<void>;
  log(message: string): void;
}

/** What a trainer process sends the sweep: one JSON line each. */
type ClientMessage =
  | { t: 'ready'; trial: string; info: TrainerReady }
  | { t: 'epoch'; trial: string; n: number; report: EpochReport }
  | { t: 'checkpoint'; trial: string; n: number; checkpoint: TrainerCheckpoint }
  | { t: 'log'; trial: string; message: string };

interface ServerMessage {
  n: number;
  decision: EpochDecision | null;
}

function lines(socket: Socket, onLine: (line: string) => void): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
  });
}

/** Socket files of sweep processes that no longer run (killed by a signal: no exit handler ran). */
export function removeStaleSockets(): void {
  let names: string[] = [];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^ringpipe-sweep-(\d+)-[0-9a-f]+\.sock$/.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(tmpdir(), n), { force: true });
    }
  }
}

/** The sweep's end of the channel. */
export class ControlServer {
  private readonly sockets = new Set<Socket>();
  /** Removes the socket file if the process exits without close(). */
  private readonly onExit = () => {
    if (process.platform !== 'win32') rmSync(this.address, { force: true });
  };
  private constructor(
    private readonly server: Server,
    /** Where trainers connect. */
    readonly address: string,
  ) {}

  /** Listens on a fresh socket path (removing those of sweeps whose process was killed). */
  static async start(handlers: ControlHandlers): Promise<ControlServer> {
    if (process.platform !== 'win32') removeStaleSockets();
    const name = `ringpipe-sweep-${process.pid}-${randomBytes(4).toString('hex')}`;
    const address = process.platform === 'win32' ? `\\\\.\\pipe\\${name}` : join(tmpdir(), `${name}.sock`);
    const server = createServer();
    const self = new ControlServer(server, address);
    server.on('connection', (socket) => {
      self.sockets.add(socket);
      socket.on('close', () => self.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      lines(socket, (line) => {
        let m: ClientMessage;
        try {
          m = JSON.parse(line) as ClientMessage;
        } catch {
          handlers.log(`sweep control: ignored a malformed message (${line.slice(0, 80)})`);
          return;
        }
        if (m.t === 'ready') handlers.ready(m.trial, m.info);
        else if (m.t === 'log') handlers.log(m.message);
        else if (m.t === 'epoch' || m.t === 'checkpoint') {
          void Promise.resolve()
            .then(() => (m.t === 'epoch' ? handlers.epoch(m.trial, m.report) : handlers.checkpoint?.(m.trial, m.checkpoint)))
            .catch((e: unknown) => {
              handlers.log(`sweep control: ${m.t} handler failed for trial ${m.trial}: ${(e as Error).message}`);
              return undefined;
            })
            .then((decision) => {
              if (!socket.destroyed) socket.write(`${JSON.stringify({ n: m.n, decision: decision ?? null } satisfies ServerMessage)}\n`);
            });
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new SweepControlError(`cannot listen on ${address}: ${e.message}`, { cause: e })));
      server.listen(address, () => resolve());
    });
    process.once('exit', self.onExit);
    return self;
  }

  /** Stops listening, drops connections and removes the socket file. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    process.removeListener('exit', this.onExit);
    this.onExit();
  }
}

/** How long a trainer waits for the sweep over its control channel. */
export interface ControlClientOptions {
  /** Give up waiting for an epoch decision after this many ms and continue. Default 60,000. */
  replyTimeoutMs?: number;
  /** Give up waiting for a checkpoint to be taken (e.g. uploaded) after this many ms and continue. Default 600,000. */
  checkpointTimeoutMs?: number;
}

/** The trainer's end of the channel. */
export class ControlClient {
  private next = 0;
  private readonly pending = new Map<number, (d: EpochDecision) => void>();
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly trialId: string,
    private readonly timeoutMs: number,
    private readonly checkpointTimeoutMs: number,
  ) {
    lines(socket, (line) => {
      try {
        const m = JSON.parse(line) as ServerMessage;
        this.pending.get(m.n)?.(m.decision ?? undefined);
        this.pending.delete(m.n);
      } catch {
        // not ours
      }
    });
    const drop = () => {
      this.closed = true;
      for (const resolve of this.pending.values()) resolve(undefined);
      this.pending.clear();
    };
    socket.on('close', drop);
    socket.on('error', drop);
  }

  /** Connects to the sweep's control socket at `address`, as the trainer of `trialId`. */
  static connect(address: string, trialId: string, options: ControlClientOptions = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(address);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, trialId, options.replyTimeoutMs ?? 60_000, options.checkpointTimeoutMs ?? 600_000));
      });
      socket.once('error', (e) => reject(new SweepControlError(`trial ${trialId}: cannot reach the sweep at ${address}: ${e.message}`, { cause: e })));
    });
  }

  /** Hooks for a Trainer that forward to the sweep. */
  context(): TrainerContext {
    return {
      onReady: (info) => this.send({ t: 'ready', trial: this.trialId, info }),
      onEpoch: (report) => this.epoch(report),
      onCheckpoint: async (checkpoint) => void (await this.request((n) => ({ t: 'checkpoint', trial: this.trialId, n, checkpoint }), this.checkpointTimeoutMs)),
      log: (message) => this.send({ t: 'log', trial: this.trialId, message }),
    };
  }

  /** Reports an epoch; resolves with the sweep's decision (continue after `replyTimeoutMs` without one). */
  epoch(report: EpochReport): Promise<EpochDecision> {
    return this.request((n) => ({ t: 'epoch', trial: this.trialId, n, report }), this.timeoutMs);
  }

  /** Sends a message that expects a reply; resolves with the reply's decision, or undefined after `timeoutMs`. */
  private request(message: (n: number) => ClientMessage, timeoutMs: number): Promise<EpochDecision> {
    if (this.closed) return Promise.resolve(undefined);
    const n = this.next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(n);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(n, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
      this.send(message(n));
    });
  }

  /** Ends the connection once what was sent is flushed. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.end(() => resolve()));
  }

  private send(m: ClientMessage): void {
    if (!this.closed) this.socket.write(`${JSON.stringify(m)}\n`);
  }
}
