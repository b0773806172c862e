// An OpenID Connect provider no one on the project wrote (panva's certified `oidc-provider`),
// run on loopback as the upstream of latchkey's generic provider in the browser tests.
//
// Usage: node oidc-provider.mjs <client_id> <client_secret>
// Prints "READY <issuer>" once listening on a free port, then reads the client's redirect URI
// as one line on stdin (the relying party learns the issuer first) and prints "CONFIGURED". Its development sign-in page takes
// any login (the login becomes the subject) and any password; the consent page has one
// "Continue" button. The account's claims are derived from the login: `<login>@example.com`,
// verified.
import http from 'node:http';
import Provider from 'oidc-provider';

import readline from 'node:readline';

const [clientId, clientSecret] = process.argv.slice(2);
let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
process.stdout.write(`READY ${issuer}\n`);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const redirectUri = (await lines.next()).value.trim();

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name', 'name', 'picture'],
  },
  // Put the scopes' claims in the ID token itself, as Google and Microsoft do.
  conformIdTokenClaims: false,
  cookies: { keys: ['latchkey-interop-cookie-key-not-a-secret'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: true,
          given_name: 'Grace',
          family_name: 'Hopper',
          name: 'Grace Hopper',
          picture: `https://images.example.com/${id}.png`,
        };
      },
    };
  },
});
handler = provider.callback();
process.stdout.write('CONFIGURED\n');
