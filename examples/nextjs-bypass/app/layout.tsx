import type { ReactNode } from 'react';

export const metadata = { title: 'Clerk emergency bypass example' };

// No ClerkProvider and no next/font/google: nothing here loads from the network at build time.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'system-ui, sans-serif', margin: '2rem' }}>{children}</body>
    </html>
  );
}
