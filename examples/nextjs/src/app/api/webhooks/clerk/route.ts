// Clerk webhook: verify the Svix signature with Clerk's own verifyWebhook (secret from
// CLERK_WEBHOOK_SIGNING_SECRET), then create, update or delete the app's user by Clerk id.
import { verifyWebhook } from '@clerk/nextjs/webhooks';
import type { NextRequest } from 'next/server';
import { NextResponse } from 'next/server';

import { db } from '@/libs/database';

export async function POST(req: NextRequest) {
  let evt;
  try {
    evt = await verifyWebhook(req);
  } catch {
    return NextResponse.json({ error: 'Invalid signature' }, { status: 400 });
  }

  const clerkUserId = evt.data.id;
  if (!clerkUserId) {
    return NextResponse.json({ error: 'No user ID provided' }, { status: 400 });
  }

  let user = null;
  switch (evt.type) {
    case 'user.created':
    case 'user.updated': {
      const primary = evt.data.email_addresses.find(
        (address) => address.id === evt.data.primary_email_address_id,
      );
      user = await db.user.upsert(clerkUserId, {
        email: primary?.email_address ?? null,
        firstName: evt.data.first_name,
        lastEvent: evt.type,
      });
      break;
    }
    case 'user.deleted': {
      user = await db.user.delete(clerkUserId);
      break;
    }
    default:
      break;
  }

  return NextResponse.json({ user });
}
