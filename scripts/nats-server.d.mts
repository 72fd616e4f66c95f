// Types of scripts/nats-server.mjs.
export declare class NatsServerMissingError extends Error {
  readonly code: 'ERR_NATS_SERVER_MISSING';
}
export declare function findNatsServer(env?: NodeJS.ProcessEnv): string | undefined;
export declare function natsServerVersion(path: string): string | undefined;
export declare function ensureNatsServer(options?: { install?: boolean; log?: (message: string) => void }): {
  path: string;
  version: string | undefined;
  installed: boolean;
};
