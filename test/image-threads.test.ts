import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { applyThreadPlan, threadEnv, threadPlan } from '../src/image/threads.js';

describe('thread sizing rule', () => {
  it('splits the cores between the images in flight', () => {
    expect(threadPlan({ cores: 2, replicas: 1 })).toMatchObject({ vipsConcurrency: 2, uvThreadpoolSize: 4 });
    // Replicas in threads of one process share its libvips: at least 2 threads per image.
    expect(threadPlan({ cores: 2, replicas: 2 })).toMatchObject({ vipsConcurrency: 2, uvThreadpoolSize: 4 });
    expect(threadPlan({ cores: 2, replicas: 4 })).toMatchObject({ vipsConcurrency: 2, uvThreadpoolSize: 5 });
    // A process each: one thread per image once images in flight reach the cores.
    expect(threadPlan({ cores: 2, replicas: 2, replicasPerProcess: 1 })).toMatchObject({ vipsConcurrency: 1, uvThreadpoolSize: 4 });
    expect(threadPlan({ cores: 2, replicas: 4, replicasPerProcess: 1 })).toMatchObject({ vipsConcurrency: 1 });
    expect(threadPlan({ cores: 2, replicas: 1, inFlight: 2 })).toMatchObject({ vipsConcurrency: 2 });
    expect(threadPlan({ cores: 16, replicas: 4 })).toMatchObject({ vipsConcurrency: 4 });
    expect(threadPlan({ cores: 16, replicas: 4, inFlight: 2 })).toMatchObject({ vipsConcurrency: 2, uvThreadpoolSize: 9 });
    // Replicas spread over processes: each process's pool only holds its own images.
    expect(threadPlan({ cores: 32, replicas: 8, replicasPerProcess: 2, inFlight: 4 })).toMatchObject({ vipsConcurrency: 2, uvThreadpoolSize: 9 });
    expect(threadPlan({ cores: 64, replicas: 16, replicasPerProcess: 1, inFlight: 1 })).toMatchObject({ vipsConcurrency: 4, uvThreadpoolSize: 4 });
    expect(threadPlan({ cores: 4, replicas: 2000 }).uvThreadpoolSize).toBe(1024);
    expect(threadPlan({ replicas: 1 }).cores).toBeGreaterThanOrEqual(1);
  });

  it('rejects nonsense', () => {
    expect(() => threadPlan({ replicas: 0 })).toThrow(InvalidArgumentError);
    expect(() => threadPlan({ replicas: 2, cores: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => threadPlan({ replicas: 2, replicasPerProcess: 3 })).toThrow(/exceeds/);
  });

  it('threadEnv gives the variable for a child process', () => {
    expect(threadEnv(threadPlan({ cores: 8, replicas: 6 }))).toEqual({ UV_THREADPOOL_SIZE: '7' });
  });

  describe('applyThreadPlan', () => {
    const before = sharp.concurrency();
    const env = process.env.UV_THREADPOOL_SIZE;
    afterEach(() => {
      sharp.concurrency(before);
      sharp.cache(true);
      if (env === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = env;
    });

    it('sets sharp.concurrency, turns the operation cache off and fills UV_THREADPOOL_SIZE if unset', () => {
      delete process.env.UV_THREADPOOL_SIZE;
      const r = applyThreadPlan(threadPlan({ cores: 6, replicas: 2 }));
      expect(r).toEqual({ vipsConcurrency: 3, uvThreadpoolSizeSet: true, uvThreadpoolSize: 4 });
      expect(sharp.concurrency()).toBe(3);
      expect(sharp.cache().items.max).toBe(0);
      process.env.UV_THREADPOOL_SIZE = '12';
      const r2 = applyThreadPlan(threadPlan({ cores: 6, replicas: 6, replicasPerProcess: 1 }), { cache: true });
      expect(r2).toEqual({ vipsConcurrency: 1, uvThreadpoolSizeSet: false, uvThreadpoolSize: 12 });
    });
  });
});
