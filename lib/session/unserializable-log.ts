import { Logger } from '@nestjs/common';
import type { UnserializableDataError } from '../protocol/index.js';

const logger = new Logger('ReliableWs');
/** Distinct event/kind pairs remembered; past it the memory starts over, so a flood of names stays bounded. */
const MAX_REMEMBERED = 1024;
const reported = new Set<string>();

/** Logs a value that could not be serialised, once per event name and kind, never the value itself. */
export function reportUnserializable(error: UnserializableDataError): void {
  const key = `${error.kind}\u0000${error.event}`;
  if (reported.has(key)) return;
  if (reported.size >= MAX_REMEMBERED) reported.clear();
  reported.add(key);
  logger.error(`${error.message} (answered INTERNAL; logged once per event and kind)`);
}
