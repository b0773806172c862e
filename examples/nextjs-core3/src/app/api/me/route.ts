// The signed-in person as the server sees them: auth() reads the session token, currentUser()
// asks the Backend API (CLERK_API_URL), db is what the webhook stored.
import { auth, currentUser } from '@clerk/nextjs/server';
import { NextResponse } from 'next/server';

import { db } from '@/libs/database';

export async function GET() {
  const { userId, sessionId } = await auth();
  if (!userId) {
    return NextResponse.json({ error: 'Not signed in' }, { status: 401 });
  }
  const user = await currentUser();
  return NextResponse.json({
    userId,
    sessionId,
    firstName: user?.firstName ?? null,
    email: user?.primaryEmailAddress?.emailAddress ?? null,
    stored: await db.user.find(userId),
  });
}
