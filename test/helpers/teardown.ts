import { afterAll, beforeEach } from 'vitest';

/** How a test ended, for a teardown that keeps evidence of a failure (a failed test's prefix). */
export interface TeardownOutcome {
  failed: boolean;
  /** The test's name, or the file's when the resource outlived its tests. */
  test: string;
}

interface Closer {
  name: string;
  close(outcome: TeardownOutcome): Promise<void> | void;
}

/** Resources registered outside a test (in `beforeAll`): closed when the file's tests are done. */
const fileScope: Closer[] = [];
/** Resources registered during the current test (its `beforeEach` hooks included). */
let testScope: Closer[] | undefined;
let fileFailed = false;

/**
 * Registers a resource to close: one started in a test closes when the test ends (after its
 * `afterEach` hooks), one started in `beforeAll` when the file's tests are done. Every resource
 * closes in reverse order of registration, each in its own try/catch; an error fails the test.
 * `close` is called once; a resource closed earlier by hand must make it a no-op.
 */
export function onTeardown(name: string, close: Closer['close']): void {
  (testScope ?? fileScope).push({ name, close });
}

async function closeAll(closers: Closer[], outcome: TeardownOutcome): Promise<void> {
  const errors: unknown[] = [];
  for (const closer of closers.reverse()) {
    try {
      await closer.close(outcome);
    } catch (err) {
      errors.push(new Error(`teardown of ${closer.name} failed`, { cause: err }));
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'teardown failed');
}

/** Installs the registry's hooks in a test file (test/helpers/integration-setup.ts, for every integration file). */
export function installTeardownHooks(): void {
  beforeEach(({ onTestFinished }) => {
    const scope: Closer[] = [];
    testScope = scope;
    onTestFinished(async ({ task }) => {
      testScope = undefined;
      const failed = task.result?.state === 'fail';
      if (failed) fileFailed = true;
      await closeAll(scope, { failed, test: task.name });
    });
  });
  afterAll(async () => {
    await closeAll(fileScope.splice(0), { failed: fileFailed, test: '(beforeAll)' });
  });
}
