import { auth } from '@clerk/nextjs/server';

// Never opened by the bypass: proxy.ts sends it through clerkMiddleware(), and the page checks again.
export default async function Billing() {
  const { userId } = await auth.protect();
  return (
    <main>
      <h1>Billing</h1>
      <p>Signed in as {userId}.</p>
    </main>
  );
}
