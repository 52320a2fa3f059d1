import { errorText, isInstance } from './error-text.js';

describe('errorText / isInstance', () => {
  const revoked = (): object => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  };

  it('turns anything thrown into text, never throwing itself', () => {
    expect(errorText(new Error('boom'))).toBe('boom');
    expect(errorText(new Error('boom'), { stack: true })).toContain('at ');
    expect(errorText('text')).toBe('text');
    expect(errorText(null)).toBe('null');
    expect(errorText(Symbol('s'))).toBe('Symbol(s)');
    const unprintable = '(a thrown value that cannot be shown as text)';
    expect(errorText(Object.create(null))).toBe(unprintable);
    expect(errorText({ toString: () => { throw new Error('no'); } })).toBe(unprintable);
    expect(errorText(revoked())).toBe(unprintable);
  });

  it('answers instanceof, false where instanceof itself throws', () => {
    expect(isInstance(new TypeError('x'), Error)).toBe(true);
    expect(isInstance({}, Error)).toBe(false);
    expect(isInstance(revoked(), Error)).toBe(false);
  });
});
