import { createRequire } from 'node:module';

/**
 * The parts of `@opentelemetry/api` the module uses, declared here so that the package's types
 * do not depend on the optional peer.
 */
export interface Attributes {
  [name: string]: string;
}

export interface ObservableResult {
  observe(observable: Observable, value: number, attributes?: Attributes): void;
}

export type Observable = object;

export interface Histogram {
  record(value: number, attributes?: Attributes): void;
}

interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

export interface Meter {
  createObservableCounter(name: string, options?: InstrumentOptions): Observable;
  createObservableUpDownCounter(name: string, options?: InstrumentOptions): Observable;
  createObservableGauge(name: string, options?: InstrumentOptions): Observable;
  createHistogram(name: string, options?: InstrumentOptions): Histogram;
  addBatchObservableCallback(callback: (result: ObservableResult) => void, observables: Observable[]): void;
  removeBatchObservableCallback(callback: (result: ObservableResult) => void, observables: Observable[]): void;
}

interface OpenTelemetryApi {
  metrics: { getMeterProvider(): MeterProvider };
  createNoopMeter(): Meter;
}

export interface MeterProvider {
  getMeter(name: string, version?: string): Meter;
}

let api: OpenTelemetryApi | null | undefined;

/**
 * A meter of the globally registered MeterProvider, or undefined when `@opentelemetry/api` is not
 * installed or no SDK registered a provider (yet). The API is loaded with `require`, so that the
 * package has no top-level await and stays loadable through `require(esm)`.
 */
export function globalMeter(name: string): { provider: MeterProvider; meter: Meter } | undefined {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
    } catch {
      api = null;
    }
  }
  if (!api) return undefined;
  const provider = api.metrics.getMeterProvider();
  const meter = provider.getMeter(name);
  return meter === api.createNoopMeter() ? undefined : { provider, meter };
}
