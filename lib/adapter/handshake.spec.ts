import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { clientIp, isOriginAllowed, normalizeGatewayPath, refuseUpgrade, requestPath } from './handshake.js';
import type { ResolvedReliableWsOptions } from '../reliable-ws.options.js';

type OriginOptions = Pick<ResolvedReliableWsOptions, 'allowedOrigins' | 'requireOrigin'>;

/** The parts of an IncomingMessage the handshake helpers read. */
function request(
  headers: Record<string, string | string[] | undefined>,
  remoteAddress: string | null = '10.0.0.1',
  url = '/ws',
): IncomingMessage {
  return { headers, socket: { remoteAddress: remoteAddress ?? undefined }, url } as unknown as IncomingMessage;
}

describe('clientIp', () => {
  it('uses the socket address when trustProxy is false, ignoring X-Forwarded-For', () => {
    expect(clientIp(request({ 'x-forwarded-for': '1.1.1.1' }, '10.0.0.1'), false)).toBe('10.0.0.1');
  });

  it("is 'unknown' when the socket has no address", () => {
    expect(clientIp(request({}, null), false)).toBe('unknown');
  });

  it('with 1 hop takes the last X-Forwarded-For entry (the one our proxy added)', () => {
    expect(clientIp(request({ 'x-forwarded-for': '6.6.6.6, 1.1.1.1' }, '10.0.0.1'), 1)).toBe('1.1.1.1');
  });

  it('with 2 hops takes the second-to-last entry', () => {
    expect(clientIp(request({ 'x-forwarded-for': '6.6.6.6, 1.1.1.1, 2.2.2.2' }, '10.0.0.1'), 2)).toBe('1.1.1.1');
  });

  it('ignores entries a client prepended to spoof its address', () => {
    const spoofed = request({ 'x-forwarded-for': '127.0.0.1, 9.9.9.9' }, '10.0.0.1');
    expect(clientIp(spoofed, 1)).toBe('9.9.9.9');
  });

  it('falls back to the socket address without X-Forwarded-For', () => {
    expect(clientIp(request({}, '10.0.0.1'), 1)).toBe('10.0.0.1');
    expect(clientIp(request({ 'x-forwarded-for': '' }, '10.0.0.1'), 3)).toBe('10.0.0.1');
  });

  it('takes the left-most entry when fewer hops are present than trusted', () => {
    expect(clientIp(request({ 'x-forwarded-for': '1.1.1.1' }, '10.0.0.1'), 5)).toBe('1.1.1.1');
  });

  it('trims spaces, skips empty entries and joins repeated headers', () => {
    expect(clientIp(request({ 'x-forwarded-for': ' 1.1.1.1 ,, 2.2.2.2 ' }, '10.0.0.1'), 1)).toBe('2.2.2.2');
    expect(clientIp(request({ 'x-forwarded-for': ['1.1.1.1', '2.2.2.2, 3.3.3.3'] }, '10.0.0.1'), 2)).toBe('2.2.2.2');
  });
});

describe('isOriginAllowed', () => {
  const sameOrigin: OriginOptions = { allowedOrigins: 'same-origin', requireOrigin: false };

  it('allows a request without Origin (non-browser) unless requireOrigin', () => {
    expect(isOriginAllowed(request({ host: 'a.com' }), sameOrigin)).toBe(true);
    expect(isOriginAllowed(request({ host: 'a.com' }), { ...sameOrigin, requireOrigin: true })).toBe(false);
    expect(isOriginAllowed(request({}), { allowedOrigins: '*', requireOrigin: true })).toBe(false);
  });

  it("allows any Origin with '*'", () => {
    expect(isOriginAllowed(request({ origin: 'https://evil.example' }), { allowedOrigins: '*', requireOrigin: false })).toBe(true);
  });

  it('same-origin: compares the Origin host (with port) to Host, case-insensitively', () => {
    expect(isOriginAllowed(request({ origin: 'http://localhost:3000', host: 'localhost:3000' }), sameOrigin)).toBe(true);
    expect(isOriginAllowed(request({ origin: 'https://App.Example.com', host: 'app.example.COM' }), sameOrigin)).toBe(true);
    expect(isOriginAllowed(request({ origin: 'http://localhost:3001', host: 'localhost:3000' }), sameOrigin)).toBe(false);
    expect(isOriginAllowed(request({ origin: 'https://evil.example', host: 'app.example.com' }), sameOrigin)).toBe(false);
  });

  it("same-origin: refuses without Host and for an unparsable Origin such as 'null'", () => {
    expect(isOriginAllowed(request({ origin: 'https://a.com' }), sameOrigin)).toBe(false);
    expect(isOriginAllowed(request({ origin: 'null', host: 'a.com' }), sameOrigin)).toBe(false);
  });

  it('a list: exact origins (case-insensitive) and RegExps', () => {
    const options: OriginOptions = { allowedOrigins: ['https://app.example.com', /^https:\/\/[a-z]+\.preview\.dev$/], requireOrigin: false };
    expect(isOriginAllowed(request({ origin: 'https://app.example.com' }), options)).toBe(true);
    expect(isOriginAllowed(request({ origin: 'HTTPS://APP.EXAMPLE.COM' }), options)).toBe(true);
    expect(isOriginAllowed(request({ origin: 'https://pr.preview.dev' }), options)).toBe(true);
    expect(isOriginAllowed(request({ origin: 'https://app.example.com.evil.io' }), options)).toBe(false);
    expect(isOriginAllowed(request({ origin: 'http://app.example.com' }), options)).toBe(false);
    expect(isOriginAllowed(request({ origin: 'https://pr.preview.dev.evil.io' }), options)).toBe(false);
  });

  it('a RegExp with the g flag gives the same answer on every request', () => {
    const options: OriginOptions = { allowedOrigins: [/^https:\/\/app\.example\.com$/g], requireOrigin: false };
    const answers = [1, 2, 3, 4].map(() => isOriginAllowed(request({ origin: 'https://app.example.com' }), options));
    expect(answers).toEqual([true, true, true, true]);
  });

  it('a function: only a literal true allows; a throwing check refuses', () => {
    const seen: Array<[string, unknown]> = [];
    const req = request({ origin: 'https://x.io' });
    expect(
      isOriginAllowed(req, {
        allowedOrigins: (origin, r) => {
          seen.push([origin, r]);
          return true;
        },
        requireOrigin: false,
      }),
    ).toBe(true);
    expect(seen).toEqual([['https://x.io', req]]);
    expect(isOriginAllowed(req, { allowedOrigins: (() => 1) as never, requireOrigin: false })).toBe(false);
    expect(isOriginAllowed(req, { allowedOrigins: () => false, requireOrigin: false })).toBe(false);
    expect(
      isOriginAllowed(req, {
        allowedOrigins: () => {
          throw new Error('boom');
        },
        requireOrigin: false,
      }),
    ).toBe(false);
  });
});

describe('normalizeGatewayPath', () => {
  it.each([
    [undefined, '/'],
    ['', '/'],
    ['/', '/'],
    ['ws', '/ws'],
    ['/ws', '/ws'],
    ['/ws/', '/ws'],
    ['/ws//', '/ws'],
    ['api/ws/', '/api/ws'],
    ['//', '/'],
  ])('%p -> %p', (input, expected) => {
    expect(normalizeGatewayPath(input)).toBe(expected);
  });
});

describe('requestPath', () => {
  it('drops the query string', () => {
    expect(requestPath(request({}, '1.1.1.1', '/ws?token=abc&x=1'))).toBe('/ws');
    expect(requestPath(request({}, '1.1.1.1', '/'))).toBe('/');
  });

  it('reads every path as the URL parser does, plain or not', () => {
    const piece = fc.constantFrom('/', '//', '.', '..', '%2e', '%2F', '?', '#', '\\', ' ', '\t', 'é', '~', '-', '_', 'ws', 'A', '9', ':', '@');
    const url = fc.array(piece, { maxLength: 12 }).map((pieces) => pieces.join(''));
    fc.assert(
      fc.property(url, (text) => {
        const parsed = URL.canParse(text, 'ws://localhost') ? new URL(text, 'ws://localhost').pathname : undefined;
        expect(requestPath(request({}, '1.1.1.1', text))).toBe(parsed);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('refuseUpgrade', () => {
  it('writes a complete HTTP response and ends the socket', async () => {
    const socket = new PassThrough();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => socket.on('end', resolve));
    refuseUpgrade(socket, 403, 'origin not allowed');
    await ended;
    const text = Buffer.concat(chunks).toString();
    const [head, body] = text.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(head).toContain('Connection: close');
    expect(body).toBe('origin not allowed\n');
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
  });

  it('destroys a socket that can no longer be written', () => {
    const socket = new PassThrough();
    socket.end();
    refuseUpgrade(socket, 503, 'server is shutting down');
    expect(socket.destroyed).toBe(true);
  });
});
