import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, lazyChild } from '../../src/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('lazyChild: a child logger made only when it writes', () => {
  it('writes what the child would, with its bindings, at the levels the parent logs', () => {
    const { lines, destination } = capture();
    const parent = createLogger('warn', destination);
    const log = lazyChild(parent, { requestId: 'r1' });
    log.info('not written');
    log.warn({ code: 'X' }, 'written');
    log.child({ batchId: 'b1' }).error('grandchild');
    expect(lines.map(({ msg, requestId, code, batchId }) => ({ msg, requestId, code, batchId }))).toEqual([
      { msg: 'written', requestId: 'r1', code: 'X', batchId: undefined },
      { msg: 'grandchild', requestId: 'r1', code: undefined, batchId: 'b1' },
    ]);
  });

  it('follows the parent level, and redacts as the parent does', () => {
    const { lines, destination } = capture();
    const parent = createLogger('warn', destination);
    const log = lazyChild(parent, { jobId: 'j1' });
    expect(log.isLevelEnabled('info')).toBe(false);
    parent.level = 'info';
    log.info({ req: { headers: { authorization: 'Bearer secret' } } }, 'now written');
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).not.toContain('secret');
    expect(lines[0]).toMatchObject({ jobId: 'j1', msg: 'now written' });
  });

  it('takes a level of its own at once', () => {
    const { lines, destination } = capture();
    const log = lazyChild(createLogger('warn', destination), { x: 1 }, { level: 'debug' });
    log.debug('debug line');
    expect(lines.map((l) => l.msg)).toEqual(['debug line']);
  });
});
