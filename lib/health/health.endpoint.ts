import { Logger, type OnModuleInit } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';

export interface HealthOptions {
  /** HTTP path of the endpoint. */
  path: string;
}

export interface HealthReport {
  status: 'ok' | 'draining' | 'degraded';
  connections: number;
  [detail: string]: unknown;
}

export type HealthSource = () => HealthReport;

const HTTP_OK = 200;
const HTTP_SERVICE_UNAVAILABLE = 503;

/** Serves `GET <path>`: 200 with the report while it is `ok`, 503 otherwise. */
export class HealthEndpoint implements OnModuleInit {
  private readonly logger = new Logger(HealthEndpoint.name);

  constructor(
    private readonly options: HealthOptions,
    private readonly httpAdapterHost: HttpAdapterHost,
    private readonly report: HealthSource,
  ) {}

  onModuleInit(): void {
    const { httpAdapter } = this.httpAdapterHost;
    if (!httpAdapter) {
      this.logger.warn(`no HTTP server: the health endpoint ${this.options.path} is not served`);
      return;
    }
    httpAdapter.get(this.options.path, (_request: unknown, response: unknown) => {
      const report = this.report();
      httpAdapter.reply(response, report, report.status === 'ok' ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE);
    });
  }
}
