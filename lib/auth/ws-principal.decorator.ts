import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/**
 * The principal that authentication established for the connection (what `auth.verify`
 * returned), or one property of it by dotted path: `@WsPrincipal('id')`.
 */
export const WsPrincipal = createParamDecorator((path: string | undefined, context: ExecutionContext) => {
  const principal: unknown = context.switchToWs().getClient<{ principal?: unknown }>().principal;
  if (!path) return principal;
  return path.split('.').reduce<unknown>(
    (value, key) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined),
    principal,
  );
});
