// Connecting with the official Node transport, but closing what a failed dial leaves open. Its
// transport ignores close() until the NATS greeting arrived, so a server that accepts the TCP
// connection and never greets (a stopped server, a wrong port such as the monitoring one, a proxy
// in front of a dead server) kept a socket, and with it the process, alive for ever after the
// connect error; every reconnect attempt to such a server left one more.
import { createConnection, type Socket } from 'node:net';
import { NatsConnectionImpl, deferred, hasWsProtocol, setTransportFactory, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { NodeTransport, nodeResolveHost } from '@nats-io/transport-node/lib/node_transport.js';

class ClosingTransport extends NodeTransport {
  /** The socket being dialled (the base class knows it only once connected). */
  private dialing?: Socket;

  override dial(hp: { hostname: string; port: number }): Promise<Socket> {
    // As the base class dials, keeping the socket.
    const d = deferred<Socket>();
    let dialError: Error | undefined;
    const socket = createConnection(hp.port, hp.hostname, () => {
      d.resolve(socket);
      socket.removeAllListeners();
    });
    this.dialing = socket;
    socket.on('error', (err) => (dialError = err));
    socket.on('close', () => {
      socket.removeAllListeners();
      d.reject(dialError);
    });
    socket.setNoDelay(true);
    return d;
  }

  override async close(err?: Error): Promise<void> {
    if (!this.connected) {
      // A dial that timed out or failed: nothing to flush, everything to free.
      this.done = true;
      this.dialing?.destroy();
      this.socket?.destroy();
      return;
    }
    return super.close(err);
  }
}

/** `connect` of @nats-io/transport-node, with sockets of failed dials closed. */
export function connectNats(options: ConnectionOptions): Promise<NatsConnection> {
  if (hasWsProtocol(options)) return Promise.reject(new Error("the Node client does not support websockets: use nats:// or tls:// URLs"));
  setTransportFactory({ factory: () => new ClosingTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(options);
}
