// The app's own users table, kept deliberately light: one JSON file (USERS_FILE, default
// .data/users.json) instead of the article's Prisma + Postgres. The point is what the webhook
// route does with it (verify, then upsert or delete by Clerk user id), not the storage.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type User = {
  clerkUserId: string;
  email: string | null;
  firstName: string | null;
  lastEvent: string;
  /** Every event type applied to this row, oldest first. */
  events: string[];
  createdAt: string;
  updatedAt: string;
};

type Table = Record<string, User>;

const file = () => path.resolve(process.env.USERS_FILE ?? '.data/users.json');

async function load(): Promise<Table> {
  try {
    return JSON.parse(await readFile(file(), 'utf8')) as Table;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}

async function save(table: Table) {
  await mkdir(path.dirname(file()), { recursive: true });
  const temporary = `${file()}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(table, null, 2));
  await rename(temporary, file());
}

// One change at a time within this process.
let queue: Promise<unknown> = Promise.resolve();
function change<T>(apply: (table: Table) => T): Promise<T> {
  const next = queue.then(async () => {
    const table = await load();
    const result = apply(table);
    await save(table);
    return result;
  });
  queue = next.catch(() => undefined);
  return next;
}

export const db = {
  user: {
    find: async (clerkUserId: string) => (await load())[clerkUserId] ?? null,
    upsert: (clerkUserId: string, fields: Pick<User, 'email' | 'firstName' | 'lastEvent'>) =>
      change((table) => {
        const now = new Date().toISOString();
        const existing = table[clerkUserId];
        table[clerkUserId] = {
          clerkUserId,
          ...fields,
          events: [...(existing?.events ?? []), fields.lastEvent],
          createdAt: existing?.createdAt ?? now,
          updatedAt: now,
        };
        return table[clerkUserId];
      }),
    delete: (clerkUserId: string) =>
      change((table) => {
        const existing = table[clerkUserId] ?? null;
        delete table[clerkUserId];
        return existing;
      }),
  },
};
