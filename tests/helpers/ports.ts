/** A loopback port that was free a moment ago (for servers a test starts itself). */
export { freePort } from '../../src/temporal/dev-server';
