import { auth } from '@clerk/nextjs/server';
import { underBypass } from '../../bypass';

export default async function Dashboard() {
  // Under the bypass there is no user: show what is safe for anyone, never assume an identity.
  if (await underBypass()) {
    return (
      <main>
        <h1>Dashboard</h1>
        <p>Sign-in is temporarily unavailable: you see the public view of the dashboard.</p>
      </main>
    );
  }
  const { userId } = await auth.protect();
  return (
    <main>
      <h1>Dashboard</h1>
      <p>Signed in as {userId}.</p>
    </main>
  );
}
