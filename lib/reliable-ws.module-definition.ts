import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ReliableWsOptions } from './reliable-ws.options.js';

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: RELIABLE_WS_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ReliableWsOptions>({ moduleName: 'ReliableWs' })
  .setClassMethodName('forRoot')
  .setExtras({}, (definition) => ({ ...definition, global: true }))
  .build();
