// Hashes each line of stdin with bcryptjs (an implementation latchkey's authors did not write).
// Usage: node bcrypt-hash.mjs <cost>
// Prints one digest per line, in the order of the input lines.
import bcrypt from "bcryptjs";

const [cost] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const passwords = Buffer.concat(chunks).toString("utf8").split("\n").filter((line) => line.length > 0);
const digests = passwords.map((password) => bcrypt.hashSync(password, Number(cost)));
process.stdout.write(digests.join("\n") + "\n");
