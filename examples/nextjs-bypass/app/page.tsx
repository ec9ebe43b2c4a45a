import Link from 'next/link';

export default function Home() {
  return (
    <main>
      <h1>Public</h1>
      <p>Anyone can read this page.</p>
      <ul>
        <li><Link href="/app/dashboard">Dashboard</Link> (signed in; open during the emergency bypass)</li>
        <li><Link href="/app/admin">Admin</Link>, <Link href="/app/billing">Billing</Link>, <Link href="/app/api-keys">API keys</Link> (signed in; closed during the bypass)</li>
      </ul>
    </main>
  );
}
