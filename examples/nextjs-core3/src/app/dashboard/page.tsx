// Protected by the proxy (src/proxy.ts): rendered on the server for the signed-in person.
import { auth, currentUser } from '@clerk/nextjs/server';

import { db } from '@/libs/database';

export default async function Dashboard() {
  const { userId } = await auth();
  const user = await currentUser();
  const stored = userId ? await db.user.find(userId) : null;
  return (
    <main>
      <h1>Dashboard</h1>
      <dl>
        <dt>User id (auth())</dt>
        <dd id="user-id">{userId}</dd>
        <dt>First name (currentUser())</dt>
        <dd id="first-name">{user?.firstName ?? ''}</dd>
        <dt>Email (currentUser())</dt>
        <dd id="email">{user?.primaryEmailAddress?.emailAddress ?? ''}</dd>
        <dt>The app&apos;s row (from the webhook)</dt>
        <dd id="stored">{stored ? `${stored.clerkUserId} ${stored.lastEvent}` : 'none'}</dd>
      </dl>
    </main>
  );
}
