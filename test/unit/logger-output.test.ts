import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseLogOutput, createStdoutLogger, type Logger } from '../../src/logger.js';

/** A module every install has, standing in for the prettifier: pino's own file transport. */
const INSTALLED = 'pino/file';
const MISSING = 'smsq-no-such-prettifier';

describe('chooseLogOutput: pretty only at a terminal with the prettifier installed', () => {
  it.each([
    [false, INSTALLED],
    [undefined, INSTALLED],
    [false, MISSING],
  ])('writes JSON when stdout is not a terminal (isTTY %s, module %s)', (isTTY, prettyModule) => {
    expect(chooseLogOutput({ isTTY, prettyModule })).toEqual({ format: 'json' });
  });

  it('writes pretty lines through the resolved module when stdout is a terminal', () => {
    const output = chooseLogOutput({ isTTY: true, prettyModule: INSTALLED });
    expect(output.format).toBe('pretty');
    expect(output.format === 'pretty' && isAbsolute(output.target)).toBe(true);
    expect(output.format === 'pretty' && output.target).toMatch(/pino[\\/]file\.js$/);
  });

  it('falls back to JSON, without throwing, when the prettifier is not installed', () => {
    expect(chooseLogOutput({ isTTY: true, prettyModule: MISSING })).toEqual({ format: 'json' });
    const logger = createStdoutLogger('silent', { isTTY: true, prettyModule: MISSING });
    expect(logger.level).toBe('silent');
  });
});

describe('createStdoutLogger in pretty mode', () => {
  let dir: string | undefined;
  let logger: Logger | undefined;
  afterEach(() => {
    const stream = logger && (logger as unknown as Record<symbol, { end(): void }>)[pino.symbols.streamSym];
    stream?.end();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('censors numbers, texts and secrets before the transport sees the line', async () => {
    dir = mkdtempSync(join(tmpdir(), 'smsq-logger-'));
    const file = join(dir, 'pretty.log');
    // The transport path of a terminal, with pino's file transport in place of the prettifier, so
    // what reaches the transport can be read back.
    logger = createStdoutLogger('info', {
      isTTY: true,
      prettyModule: INSTALLED,
      prettyOptions: { destination: file, mkdir: true },
    });
    logger.info(
      { to: '+34600000001', text: 'Hola', batch: { numbers: ['+34600000002'], apiKey: 'k-123' } },
      'batch sent',
    );
    const line = await waitForLine(file);
    expect(JSON.parse(line)).toMatchObject({
      msg: 'batch sent',
      service: 'smsq',
      to: '[redacted]',
      text: '[redacted]',
      batch: { numbers: '[redacted]', apiKey: '[redacted]' },
    });
    expect(line).not.toMatch(/6000000|Hola|k-123/);
  });
});

/** Polls the transport's file until it holds a whole line (the transport writes from its own thread). */
async function waitForLine(file: string, timeoutMs = 5_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // Not created yet.
    }
    const newline = text.indexOf('\n');
    if (newline >= 0) return text.slice(0, newline);
    if (Date.now() > deadline) throw new Error(`no log line in ${file} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
