import { CommandWatchdog } from './command-watchdog.js';

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

describe('CommandWatchdog', () => {
  it('rejects commands waiting longer than the timeout once nothing has been answered for that long', async () => {
    const watchdog = new CommandWatchdog(100);
    const start = performance.now();
    const hanging = watchdog.watch(never());
    watchdog.check(start + 50);
    watchdog.check(start + 150);
    await expect(hanging).rejects.toThrow('Redis did not answer within 100 ms');
  });

  it('keeps waiting while other commands are answered (a slow reply, not a silent Redis)', async () => {
    const watchdog = new CommandWatchdog(100);
    let settled = false;
    void watchdog.watch(never()).then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 130));
    await watchdog.watch(Promise.resolve('answered just now'));
    watchdog.check(performance.now() + 10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    watchdog.check(performance.now() + 200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(true);
  });

  it("counts each shard on its own: one that stops answering is not hidden by another's answers", async () => {
    const watchdog = new CommandWatchdog(100);
    const start = performance.now();
    const stalled = watchdog.watch(never(), '127.0.0.1:7001');
    let other = 0;
    for (let t = 0; t <= 200; t += 25) {
      await watchdog.watch(Promise.resolve(other++), '127.0.0.1:7002');
      watchdog.check(start + t + 25);
    }
    await expect(stalled).rejects.toThrow('Redis did not answer within 100 ms');
  });

  it('passes answers and errors through', async () => {
    const watchdog = new CommandWatchdog(100);
    await expect(watchdog.watch(Promise.resolve(7))).resolves.toBe(7);
    await expect(watchdog.watch(Promise.reject(new Error('WRONGTYPE')))).rejects.toThrow('WRONGTYPE');
  });
});
