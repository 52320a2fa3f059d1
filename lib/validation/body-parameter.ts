import { PARAM_ARGS_METADATA } from '@nestjs/websockets/constants.js';
import { WsParamtype } from '@nestjs/websockets/enums/ws-paramtype.enum.js';
import { isCheckedType } from './payload-validator.js';

/** A `@MessageBody()` parameter of a handler: its declared type and the property it reads, if any. */
export interface BodyParameter {
  metatype: unknown;
  property: string | undefined;
}

interface ParamMetadata {
  index: number;
  data?: unknown;
}

const cache = new WeakMap<Function, BodyParameter[]>();

/**
 * The `@MessageBody()` parameters of a gateway handler whose declared type can be checked,
 * read once from Nest's metadata.
 */
export function bodyParameters(gateway: Function, handler: Function): BodyParameter[] {
  let parameters = cache.get(handler);
  if (parameters) return parameters;
  const args: Record<string, ParamMetadata> = Reflect.getMetadata(PARAM_ARGS_METADATA, gateway, handler.name) ?? {};
  const types: unknown[] = Reflect.getMetadata('design:paramtypes', gateway.prototype, handler.name) ?? [];
  parameters = Object.entries(args)
    .filter(([key]) => Number(key.split(':')[0]) === WsParamtype.PAYLOAD)
    .map(([, { index, data }]) => ({
      metatype: types[index],
      property: typeof data === 'string' ? data : undefined,
    }))
    .filter(({ metatype }) => isCheckedType(metatype));
  cache.set(handler, parameters);
  return parameters;
}
