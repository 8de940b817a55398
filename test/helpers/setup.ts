/**
 * Run before every test file (vitest `setupFiles`). Test files share their worker's modules
 * (`isolate: false` in vitest.config.ts), so a hook at the top of a helper module would be
 * registered for the first file that imports it only; hooks every file needs are registered here.
 */
import { beforeEach } from 'vitest';
import { pendingConnections } from './clients.js';

beforeEach(pendingConnections);
