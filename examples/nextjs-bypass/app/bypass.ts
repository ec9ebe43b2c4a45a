import { headers } from 'next/headers';
import { BYPASS_HEADER } from '../bypass-decision';

/** Whether proxy.ts let this request through under the emergency bypass (it strips the client's own header). */
export async function underBypass(): Promise<boolean> {
  return (await headers()).get(BYPASS_HEADER) === 'true';
}
