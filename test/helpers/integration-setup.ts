/** Setup file of the integration project (vitest.config.ts): the teardown registry's hooks in every file. */
import { installTeardownHooks } from './teardown.js';

installTeardownHooks();
