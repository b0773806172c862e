// The seed article's layout, unchanged in substance: ClerkProvider around the page, a loading
// state until Clerk's script is ready, and a header with the user button or the sign-in button.
// Nothing here names latchkey: the environment points @clerk/nextjs at it (see README.md).
import {
  ClerkLoaded,
  ClerkLoading,
  ClerkProvider,
  SignInButton,
  SignedIn,
  SignedOut,
  UserButton,
} from '@clerk/nextjs';

import '../globals.css';
import Loading from './loading';

export default async function RootLayout({
  children,
}: Readonly<{
  children: React.ReactNode;
}>) {
  return (
    <html lang="en" suppressHydrationWarning>
      <ClerkProvider>
        <body className="w-screen min-h-screen flex bg-background">
          <ClerkLoading>
            <Loading />
          </ClerkLoading>
          <ClerkLoaded>
            <header className="sticky top-0 w-full h-16 flex justify-between items-center gap-4 border-b px-6">
              <span>My App</span>
              <SignedIn>
                <UserButton />
              </SignedIn>
              <SignedOut>
                <SignInButton />
              </SignedOut>
            </header>
            {children}
          </ClerkLoaded>
        </body>
      </ClerkProvider>
    </html>
  );
}
