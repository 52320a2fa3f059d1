import { wsErrorCloseCode } from './ws-error-close-code.js';

const wsError = (code: string): Error => Object.assign(new Error('from ws'), { code });

describe('wsErrorCloseCode', () => {
  it('gives the code `ws` closes with for each of its frame errors', () => {
    expect(wsErrorCloseCode(wsError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'))).toBe(1009);
    expect(wsErrorCloseCode(wsError('WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'))).toBe(1009);
    expect(wsErrorCloseCode(wsError('WS_ERR_INVALID_UTF8'))).toBe(1007);
    expect(wsErrorCloseCode(wsError('WS_ERR_TOO_MANY_BUFFERED_PARTS'))).toBe(1008);
    expect(wsErrorCloseCode(wsError('WS_ERR_INVALID_OPCODE'))).toBe(1002);
    expect(wsErrorCloseCode(wsError('WS_ERR_EXPECTED_MASK'))).toBe(1002);
  });

  it('gives nothing for an error that is not a frame error (the socket failed)', () => {
    expect(wsErrorCloseCode(wsError('ECONNRESET'))).toBeUndefined();
    expect(wsErrorCloseCode(new Error('plain'))).toBeUndefined();
  });
});
