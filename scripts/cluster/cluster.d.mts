// Types of cluster.mjs (for test/nginx.e2e-spec.ts).

export declare const ROOT: string;
export declare const NGINX_CONF: string;
export declare const NGINX_BIN: string;
export declare const SAMPLE_ENTRY: string;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  killed?: boolean;
}

export declare function renderNginxConf(template: string, options: { listen: string; upstreams: string[] }): string;
export declare function freePort(): Promise<number>;
export declare function getJson(url: string, timeoutMs?: number): Promise<{ status: number; body: any } | undefined>;

export interface Nginx {
  port: number;
  url: string;
  prefix: string;
  pid: number | undefined;
  output(): string;
  errorLog(): string;
  stop(): Promise<Exit>;
}

export declare function startNginx(options: {
  port: number;
  upstreams: string[];
  template?: string;
  onLine?: (line: string) => void;
  keepPrefix?: boolean;
}): Promise<Nginx>;

export interface Instance {
  name: string;
  port: number;
  pid: number | undefined;
  health: string;
  output(): string;
  exited: Promise<Exit>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export declare function startInstance(options: {
  entry: string;
  port: number;
  env?: Record<string, string>;
  name?: string;
  onLine?: (line: string) => void;
  healthPath?: string;
  timeoutMs?: number;
}): Promise<Instance>;

export interface RestartStep {
  instance: string;
  ended: Exit;
  drainMs: number;
  downMs: number;
}

export interface Cluster {
  url: string;
  wsUrl: string;
  port: number;
  nginx: Nginx;
  channelPrefix: string;
  instances: Instance[];
  restart(i: number): Promise<RestartStep>;
  rollingRestart(options?: { pauseMs?: number; onStep?: (step: RestartStep) => void }): Promise<RestartStep[]>;
  stop(): Promise<Array<Exit | { error: string }>>;
}

export declare function startCluster(options?: {
  entry?: string;
  instances?: number;
  port?: number;
  redisUrl?: string;
  channelPrefix?: string;
  env?: Record<string, string>;
  template?: string;
  log?: (line: string) => void;
}): Promise<Cluster>;
