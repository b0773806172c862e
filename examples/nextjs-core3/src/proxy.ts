// Next.js 16's request proxy (formerly middleware): Clerk's middleware, with /dashboard only
// for signed-in people.
import { clerkMiddleware, createRouteMatcher } from '@clerk/nextjs/server';

const isProtected = createRouteMatcher(['/dashboard(.*)']);

export default clerkMiddleware(async (auth, req) => {
  if (isProtected(req)) await auth.protect();
});

export const config = {
  // Every page and API route; not Next's own static files.
  matcher: ['/((?!_next/static|_next/image|favicon\\.ico).*)'],
};
