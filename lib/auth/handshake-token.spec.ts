import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { handshakeToken, redactToken, redactUrl } from './handshake-token.js';

function request(url: string | undefined, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

describe('handshakeToken', () => {
  it('reads ?token=', () => {
    expect(handshakeToken(request('/ws?token=abc'), undefined)).toBe('abc');
    expect(handshakeToken(request('/ws?a=1&token=abc&b=2'), undefined)).toBe('abc');
  });

  it('decodes the query value', () => {
    expect(handshakeToken(request('/ws?token=a%2Bb%3D%3D'), undefined)).toBe('a+b==');
  });

  it('reads Authorization: Bearer, case-insensitively and with extra spaces', () => {
    expect(handshakeToken(request('/ws', { authorization: 'Bearer xyz' }), undefined)).toBe('xyz');
    expect(handshakeToken(request('/ws', { authorization: 'bearer   xyz  ' }), undefined)).toBe('xyz');
  });

  it('ignores other authorization schemes and malformed bearer values', () => {
    expect(handshakeToken(request('/ws', { authorization: 'Basic dXNlcjpwYXNz' }), undefined)).toBeUndefined();
    expect(handshakeToken(request('/ws', { authorization: 'Bearer' }), undefined)).toBeUndefined();
    expect(handshakeToken(request('/ws', { authorization: 'Bearer a b' }), undefined)).toBeUndefined();
  });

  it('reads the cookie named by cookieName only', () => {
    const cookie = { cookie: 'theme=dark; xsid=wrong; sid=tok%20en; token=other' };
    expect(handshakeToken(request('/ws', cookie), 'sid')).toBe('tok en');
    expect(handshakeToken(request('/ws', cookie), undefined)).toBeUndefined();
    expect(handshakeToken(request('/ws', cookie), 'missing')).toBeUndefined();
  });

  it('keeps "=" inside a cookie value and a malformed percent-encoding as is', () => {
    expect(handshakeToken(request('/ws', { cookie: 'sid=YWJj==' }), 'sid')).toBe('YWJj==');
    expect(handshakeToken(request('/ws', { cookie: 'sid=100%' }), 'sid')).toBe('100%');
  });

  it('prefers the query, then the bearer header, then the cookie', () => {
    const headers = { authorization: 'Bearer from-header', cookie: 'sid=from-cookie' };
    expect(handshakeToken(request('/ws?token=from-query', headers), 'sid')).toBe('from-query');
    expect(handshakeToken(request('/ws', headers), 'sid')).toBe('from-header');
    expect(handshakeToken(request('/ws', { cookie: 'sid=from-cookie' }), 'sid')).toBe('from-cookie');
  });

  it('treats empty values as absent and falls through', () => {
    expect(handshakeToken(request('/ws?token=', { authorization: 'Bearer h' }), undefined)).toBe('h');
    expect(handshakeToken(request('/ws', { cookie: 'sid=' }), 'sid')).toBeUndefined();
  });

  it('returns undefined when there is nothing (or no url)', () => {
    expect(handshakeToken(request('/ws'), 'sid')).toBeUndefined();
    expect(handshakeToken(request(undefined), 'sid')).toBeUndefined();
  });

  it('finds a query token exactly where the URL parser does', () => {
    const start = fc.constantFrom('/ws', '/ws?', '/ws?token=', '/ws?a=1&token=', '/ws?token&token=');
    const piece = fc.constantFrom('?', '#', '&', '=', 'token', 'TOKEN', '%74oken', 'abc', '.', '~', '-', '%2B', '+', '\t', ' ', 'é');
    const url = fc.tuple(start, fc.array(piece, { maxLength: 8 })).map(([head, pieces]) => head + pieces.join(''));
    fc.assert(
      fc.property(url, (text) => {
        const parsed = new URL(text, 'ws://localhost').searchParams.get('token') || undefined;
        expect(handshakeToken(request(text), undefined)).toBe(parsed);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('redactUrl', () => {
  it('replaces the value of every token parameter', () => {
    expect(redactUrl('/ws?token=abc')).toBe('/ws?token=[redacted]');
    expect(redactUrl('/ws?a=1&token=abc&b=2')).toBe('/ws?a=1&token=[redacted]&b=2');
    expect(redactUrl('/ws?token=a&token=b')).toBe('/ws?token=[redacted]&token=[redacted]');
    expect(redactUrl('/ws?TOKEN=abc#frag')).toBe('/ws?TOKEN=[redacted]#frag');
  });

  it('leaves other parameters and urls without a token alone', () => {
    expect(redactUrl('/ws?mytoken=abc&tokens=1')).toBe('/ws?mytoken=abc&tokens=1');
    expect(redactUrl('/ws')).toBe('/ws');
    expect(redactUrl(undefined)).toBe('');
  });

  it('never leaves in the url a token that handshakeToken reads from it', () => {
    for (const url of [
      '/ws?token=SECRET123',
      '/ws?x=1&token=SECRET123',
      '/ws?token=SECRET123&token=other',
      '/ws?%74oken=SECRET123', // a percent-encoded parameter name is still "token" to URLSearchParams
    ]) {
      const token = handshakeToken(request(url), undefined);
      expect(token).toBe('SECRET123');
      expect(redactUrl(url)).not.toContain('SECRET123');
    }
  });
});

describe('redactToken', () => {
  it('replaces every occurrence of the token', () => {
    expect(redactToken('bad token abc (abc)', 'abc')).toBe('bad token [redacted] ([redacted])');
  });

  it('treats the token literally (no regex)', () => {
    expect(redactToken('x a.b* y axb', 'a.b*')).toBe('x [redacted] y axb');
  });

  it('leaves the text alone for an empty token or one that does not occur', () => {
    expect(redactToken('nothing here', '')).toBe('nothing here');
    expect(redactToken('nothing here', 'zzz')).toBe('nothing here');
  });
});
