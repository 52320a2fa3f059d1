import { AbstractWsAdapter } from '@nestjs/websockets';

export const MISSING_ADAPTER_MESSAGE =
  'ReliableWsModule is imported but its adapter is not installed: add ' +
  '`app.useWebSocketAdapter(new ReliableWsAdapter(app));` after NestFactory.create() and before app.listen()';

/**
 * Stands in for the adapter until the application installs `ReliableWsAdapter`, so that a
 * forgotten `useWebSocketAdapter` fails bootstrap with the line to add instead of Nest falling
 * back to Socket.IO.
 */
export class MissingReliableWsAdapter extends AbstractWsAdapter {
  create(): never {
    throw new Error(MISSING_ADAPTER_MESSAGE);
  }

  bindMessageHandlers(): void {
    throw new Error(MISSING_ADAPTER_MESSAGE);
  }
}
