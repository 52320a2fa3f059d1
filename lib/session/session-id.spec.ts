import { randomSecret } from './session-id.js';

describe('randomSecret', () => {
  it('gives 128-bit base64url secrets, never the same one twice across refills of its pool', () => {
    const secrets = Array.from({ length: 2000 }, () => randomSecret());
    for (const secret of secrets) {
      expect(secret).toMatch(/^[\w-]{22}$/);
      expect(Buffer.from(secret, 'base64url')).toHaveLength(16);
    }
    expect(new Set(secrets).size).toBe(secrets.length);
  });
});
