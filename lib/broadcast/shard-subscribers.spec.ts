import { keySlot } from './shard-subscribers.js';

describe('keySlot', () => {
  it.each([
    ['123456789', 12739],
    ['foo', 12182],
    ['rws:room:caf%C3%A9', 14327],
    ['é', 10180],
    ['user{1000}.following', 11326],
    ['{}x', 10595],
    ['a{}{b}', 15033],
  ])('%s is in slot %i, as CLUSTER KEYSLOT says', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it('hashes only the hash tag when there is one', () => {
    expect(keySlot('{rws:all}:head')).toBe(keySlot('rws:all'));
    expect(keySlot('{rws:all}:history')).toBe(keySlot('rws:all'));
  });
});
