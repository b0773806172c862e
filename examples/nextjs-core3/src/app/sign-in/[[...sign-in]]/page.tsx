// The app's own sign-in page (NEXT_PUBLIC_CLERK_SIGN_IN_URL=/sign-in): Clerk's component.
import { SignIn } from '@clerk/nextjs';

export default function Page() {
  return (
    <main>
      <SignIn />
    </main>
  );
}
