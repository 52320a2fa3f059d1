/**
 * Draws docs/benchmarks.png from the results the benchmarks wrote to bench/results/: server CPU
 * per unit of work per system (goals.json, median with min–max whiskers) and, where
 * broadcast-redis.json holds a rate sweep, the cross-instance p99 latency by offered rate.
 * The chart is SVG, rendered to PNG by the Debian Chromium through playwright-core.
 * `node dist-bench/bench/plot.js` redraws it from the last results.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR } from './bench-support.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OUTPUT = resolve(ROOT, 'docs/benchmarks.png');
const CHROMIUM = '/usr/bin/chromium';

const PANEL_WIDTH = 300;
const PANEL_HEIGHT = 260;
const MARGIN = { top: 50, right: 20, bottom: 70, left: 55 };
const COLORS: Record<string, string> = {
  reliable: '#1b7f5f',
  'reliable-no-resume': '#67b99a',
  stock: '#d9822b',
  raw: '#7a7a7a',
  'raw-acked': '#b3b3b3',
  'stock-hello': '#f0b27a',
  'Socket.IO': '#d9822b',
};
const LABELS: Record<string, string> = {
  reliable: 'nestjs-reliable-ws',
  'reliable-no-resume': 'resume: false',
  stock: 'stock WsAdapter',
  raw: 'raw ws',
  'raw-acked': 'raw ws + $acks',
  'stock-hello': 'stock + $hello',
};

type Figures = Record<string, number>;
type GoalsFile = { date: string; machine: { cpus: number; node: string }; rounds: number; results: Record<string, Record<string, Figures[]>> };
/** One rate step of broadcast-redis.json's sweep: broadcasts/s offered and fully delivered, latencies, deliveries. */
export type SweepPoint = { system: string; rate: number; achieved: number; p50Ms: number; p99Ms: number; delivered: number; expected: number };

interface Bar {
  system: string;
  median: number;
  min: number;
  max: number;
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function spreadOf(values: number[]): { median: number; min: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[(sorted.length - 1) >> 1], min: sorted[0], max: sorted[sorted.length - 1] };
}

function barPanel(x0: number, title: string, unit: string, bars: Bar[]): string {
  const top = Math.max(...bars.map((bar) => bar.max)) * 1.15;
  const width = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const height = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number): number => MARGIN.top + height - (value / top) * height;
  const slot = width / bars.length;
  const parts = [`<text x="${x0 + PANEL_WIDTH / 2}" y="22" class="title">${escape(title)}</text>`];
  for (const tick of [0, 0.25, 0.5, 0.75, 1].map((f) => f * top)) {
    parts.push(`<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + width}" y1="${y(tick)}" y2="${y(tick)}" class="grid"/>`);
    parts.push(`<text x="${x0 + MARGIN.left - 6}" y="${y(tick) + 4}" class="tick" text-anchor="end">${tick < 10 ? tick.toFixed(1) : tick.toFixed(0)}</text>`);
  }
  parts.push(`<text x="${x0 + 14}" y="${MARGIN.top + height / 2}" class="unit" transform="rotate(-90 ${x0 + 14} ${MARGIN.top + height / 2})">${escape(unit)}</text>`);
  bars.forEach((bar, i) => {
    const left = x0 + MARGIN.left + i * slot + slot * 0.15;
    const barWidth = slot * 0.7;
    const middle = left + barWidth / 2;
    parts.push(`<rect x="${left}" y="${y(bar.median)}" width="${barWidth}" height="${y(0) - y(bar.median)}" fill="${COLORS[bar.system]}"/>`);
    parts.push(`<line x1="${middle}" x2="${middle}" y1="${y(bar.min)}" y2="${y(bar.max)}" class="whisker"/>`);
    parts.push(`<text x="${middle}" y="${y(bar.max) - 5}" class="value">${bar.median < 10 ? bar.median.toFixed(2) : bar.median.toFixed(0)}</text>`);
    parts.push(`<text x="${middle}" y="${y(0) + 14}" class="label" transform="rotate(25 ${middle} ${y(0) + 14})" text-anchor="start">${escape(LABELS[bar.system])}</text>`);
  });
  return parts.join('\n');
}

function curvePanel(x0: number, sweep: SweepPoint[]): string {
  const width = PANEL_WIDTH * 1.4 - MARGIN.left - MARGIN.right;
  const height = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const maxRate = Math.max(...sweep.map((point) => point.rate));
  const maxLatency = Math.max(...sweep.map((point) => point.p99Ms));
  const logTop = Math.log10(Math.max(10, maxLatency * 1.5));
  const logBottom = Math.log10(Math.max(0.1, Math.min(...sweep.map((point) => point.p99Ms)) / 1.5));
  const x = (rate: number): number => x0 + MARGIN.left + (rate / maxRate) * width;
  const y = (ms: number): number => MARGIN.top + height - ((Math.log10(Math.max(ms, 0.1)) - logBottom) / (logTop - logBottom)) * height;
  const parts = [`<text x="${x0 + (PANEL_WIDTH * 1.4) / 2}" y="22" class="title">Redis, A → 200 clients on B and C: p99 by rate</text>`];
  for (let exponent = Math.ceil(logBottom); exponent <= Math.floor(logTop); exponent++) {
    const ms = 10 ** exponent;
    parts.push(`<line x1="${x(0)}" x2="${x(maxRate)}" y1="${y(ms)}" y2="${y(ms)}" class="grid"/>`);
    parts.push(`<text x="${x(0) - 6}" y="${y(ms) + 4}" class="tick" text-anchor="end">${ms >= 1 ? ms.toFixed(0) : ms}</text>`);
  }
  for (const rate of [...new Set(sweep.map((point) => point.rate))]) {
    parts.push(`<text x="${x(rate)}" y="${y(10 ** logBottom) + 16}" class="tick">${rate}</text>`);
  }
  parts.push(`<text x="${x0 + 14}" y="${MARGIN.top + height / 2}" class="unit" transform="rotate(-90 ${x0 + 14} ${MARGIN.top + height / 2})">p99 ms (log)</text>`);
  parts.push(`<text x="${x(maxRate / 2)}" y="${y(10 ** logBottom) + 34}" class="unit">broadcasts/s offered</text>`);
  const systems = [...new Set(sweep.map((point) => point.system))];
  systems.forEach((system, i) => {
    const points = sweep.filter((point) => point.system === system).sort((a, b) => a.rate - b.rate);
    const color = system.toLowerCase().includes('socket') ? COLORS['Socket.IO'] : COLORS.reliable;
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${x(p.rate)},${y(p.p99Ms)}`).join(' ')}"/>`);
    for (const point of points) parts.push(`<circle cx="${x(point.rate)}" cy="${y(point.p99Ms)}" r="3" fill="${color}"/>`);
    const legendY = MARGIN.top + height - 8 - (systems.length - 1 - i) * 16; // bottom right: the curves rise to the right
    parts.push(`<text x="${x(maxRate)}" y="${legendY}" class="legend" text-anchor="end" style="fill: ${color}">${escape(system)}</text>`);
  });
  return parts.join('\n');
}

function svgOf(goals: GoalsFile, sweep: SweepPoint[]): { svg: string; width: number; height: number } {
  const bars = (scenario: string, name: string, systems: string[]): Bar[] =>
    systems.filter((system) => goals.results[scenario]?.[system]).map((system) => ({ system, ...spreadOf(goals.results[scenario][system].map((f) => f[name])) }));
  const panels = [
    barPanel(0, 'Echo (rws.v1 client, everything on)', 'server CPU µs per message', bars('echo', 'cpuUsPerMessage', ['reliable', 'stock', 'raw'])),
    barPanel(PANEL_WIDTH, 'Fan-out to 2,000 clients', 'server CPU µs per delivery', bars('fanout', 'cpuUsPerDelivery', ['reliable', 'reliable-no-resume', 'stock', 'raw', 'raw-acked'])),
    barPanel(PANEL_WIDTH * 2, 'Connect (10,000 connections)', 'server CPU µs per connect', bars('idle', 'cpuUsPerConnect', ['reliable', 'stock', 'stock-hello', 'raw'])),
  ];
  let width = PANEL_WIDTH * 3;
  if (sweep.length > 0) {
    panels.push(curvePanel(width, sweep));
    width += PANEL_WIDTH * 1.4;
  }
  const height = PANEL_HEIGHT + 24;
  const caption = `${goals.rounds} interleaved rounds, median and min–max; ${goals.machine.cpus} cores, Node ${goals.machine.node}, ${goals.date.slice(0, 10)}`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<style>
text { font-family: 'DejaVu Sans', Arial, sans-serif; fill: #222; }
.title { font-size: 13px; font-weight: bold; text-anchor: middle; }
.tick, .label, .legend { font-size: 10px; }
.tick { text-anchor: middle; }
.value { font-size: 10px; text-anchor: middle; }
.unit { font-size: 11px; text-anchor: middle; fill: #555; }
.grid { stroke: #e4e4e4; }
.whisker { stroke: #222; stroke-width: 1.5; }
.caption { font-size: 10px; fill: #666; }
</style>
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
<text x="8" y="${height - 8}" class="caption">${escape(caption)}</text>
</svg>`;
  return { svg, width, height };
}

function readJson<T>(name: string): T | undefined {
  const file = resolve(RESULTS_DIR, name);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

/** Renders the plot from the saved results; returns its path, or undefined without Chromium or results. */
export async function renderPlot(): Promise<string | undefined> {
  const goals = readJson<GoalsFile>('goals.json');
  if (!goals || !existsSync(CHROMIUM)) return undefined;
  const sweep = readJson<{ sweep?: SweepPoint[] }>('broadcast-redis.json')?.sweep ?? [];
  const { svg, width, height } = svgOf(goals, sweep);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: Math.ceil(width), height }, deviceScaleFactor: 2 });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    mkdirSync(dirname(OUTPUT), { recursive: true });
    await page.screenshot({ path: OUTPUT, clip: { x: 0, y: 0, width: Math.ceil(width), height } });
    return OUTPUT;
  } finally {
    await browser.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  renderPlot().then(
    (path) => console.log(path ?? 'nothing drawn: no bench/results/goals.json or no Chromium'),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
