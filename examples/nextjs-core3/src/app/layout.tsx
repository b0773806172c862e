// The seed article's layout in Core 3 (@clerk/nextjs 7): <SignedIn>/<SignedOut> became
// <Show when="signed-in">/<Show when="signed-out">; everything else is as on Core 2.
// Nothing here names latchkey: the environment points @clerk/nextjs at it (see README.md).
import {
  ClerkLoaded,
  ClerkLoading,
  ClerkProvider,
  Show,
  SignInButton,
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
              <Show when="signed-in">
                <UserButton />
              </Show>
              <Show when="signed-out">
                <SignInButton />
              </Show>
            </header>
            {children}
          </ClerkLoaded>
        </body>
      </ClerkProvider>
    </html>
  );
}
