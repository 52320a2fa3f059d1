// Types of chat-load.mjs (for test/nginx.e2e-spec.ts).

export interface ChatLoadRecord {
  index: number;
  client: { close(): void; state: string };
  /** Texts of the `said` lines this client got, in arrival order. */
  received: string[];
  readies: Array<{ resumed: boolean; missed: boolean }>;
  closes: number[];
  failures: string[];
  welcomed: number;
  /** Texts this client said that were answered `{ ok: true }`, in order. */
  said: string[];
  requestErrors: string[];
}

export interface ChatLoadReport {
  clients: number;
  said: number;
  deliveriesExpected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  requestErrors: string[];
  failures: string[];
  reconnects: number;
  resumed: number;
  missed: number;
  closeCodes: Record<string, number>;
}

export interface ChatLoad {
  records: ChatLoadRecord[];
  confirmed(): number;
  stop(options?: { settleMs?: number }): Promise<ChatLoadReport>;
}

export declare function startChatLoad(options: {
  url: string;
  ReliableWsClient: new (url: string, options: any) => any;
  WebSocket: new (address: string, protocols?: string | string[], options?: any) => any;
  clients?: number;
  everyMs?: number;
  room?: string;
  localAddress?: (i: number) => string | undefined;
  readyTimeoutMs?: number;
  requestTimeoutMs?: number;
}): Promise<ChatLoad>;

export declare function chatLoadReport(records: ChatLoadRecord[]): ChatLoadReport;
