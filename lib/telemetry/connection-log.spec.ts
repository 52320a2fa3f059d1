import { quote, shortId } from './connection-log.js';

describe('log values from clients', () => {
  it('shortId keeps the first 8 characters of a session id, printable ASCII only: a resume cannot forge a log line', () => {
    expect(shortId('AbC-_123456789')).toBe('AbC-_123…');
    expect(shortId('\n[Nest] x')).toBe('?[Nest]?…');
    expect(shortId('é\u0000\u001b[31mred')).toBe('???[31mr…');
  });

  it('quote cuts a value at 200 characters and escapes what would break a line', () => {
    expect(quote('a\nb')).toBe('"a\\nb"');
    expect(quote('x'.repeat(500))).toBe(JSON.stringify(`${'x'.repeat(200)}…`));
    expect(quote(undefined)).toBe('(none)');
  });

  it('quote escapes every control and direction character, C1 (8-bit terminal escapes) included', () => {
    expect(quote('\u009b2J\u001b[8m\u007f')).toBe('"\\u009b2J\\u001b[8m\\u007f"');
    expect(quote('a\u2028b\u202ec\u2066d\u200fe')).toBe('"a\\u2028b\\u202ec\\u2066d\\u200fe"');
    expect(quote('café ☕')).toBe('"café ☕"');
  });
});
