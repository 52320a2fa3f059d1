import { Logger, type OnModuleInit } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import type { ReliableWsHealth } from './reliable-ws-health.service.js';

export interface HealthOptions {
  /** HTTP path of the endpoint. */
  path: string;
}

const HTTP_OK = 200;
const HTTP_SERVICE_UNAVAILABLE = 503;

/** Serves `GET <path>`: 200 with the report while it is `ok`, 503 otherwise. */
export class HealthEndpoint implements OnModuleInit {
  private readonly logger = new Logger(HealthEndpoint.name);

  constructor(
    private readonly options: HealthOptions,
    private readonly httpAdapterHost: HttpAdapterHost,
    private readonly health: ReliableWsHealth,
  ) {}

  onModuleInit(): void {
    const { httpAdapter } = this.httpAdapterHost;
    if (!httpAdapter) {
      this.logger.warn(`no HTTP server: the health endpoint ${this.options.path} is not served`);
      return;
    }
    httpAdapter.get(this.options.path, (_request: unknown, response: unknown) => {
      const report = this.health.report();
      httpAdapter.reply(response, report, report.status === 'ok' ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE);
    });
  }
}
