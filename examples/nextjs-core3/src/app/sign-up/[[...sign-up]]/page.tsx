// The app's own sign-up page (NEXT_PUBLIC_CLERK_SIGN_UP_URL=/sign-up): Clerk's component.
import { SignUp } from '@clerk/nextjs';

export default function Page() {
  return (
    <main>
      <SignUp />
    </main>
  );
}
