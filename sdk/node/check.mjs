// The seed scenario and the routes permdb serves, through node-appwrite 27.1.0 (pinned in
// package-lock.json) against `permdb serve`: ping, TablesDB, the Databases API on the same
// data, accounts, sessions, tokens, users and teams. Exits non-zero at the first difference.
// PERMDB_ENDPOINT (http://127.0.0.1:PORT/v1) and PERMDB_KEY (every scope) come from .ci/run.
import {
  Account, Client, Databases, ID, Permission, Query, Role, TablesDB, Teams, Users, AppwriteException,
} from 'node-appwrite';

const endpoint = process.env.PERMDB_ENDPOINT;
const client = () => new Client().setEndpoint(endpoint).setProject('default');
const admin = client().setKey(process.env.PERMDB_KEY);
let checks = 0;

function expect(what, got, want) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
  if (g !== w) {
    console.error(`FAIL ${what}: got ${g}, want ${w}`);
    process.exit(1);
  }
  checks += 1;
  console.log(`ok   ${what}: ${g}`);
}

async function refused(what, call, code, type) {
  try {
    await call();
  } catch (e) {
    if (!(e instanceof AppwriteException)) throw e;
    expect(what, [e.code, e.type], [code, type]);
    return;
  }
  console.error(`FAIL ${what}: accepted`);
  process.exit(1);
}

expect('ping', await admin.ping(), { message: 'Pong!' });
const tables = new TablesDB(admin);
const db = await tables.create({ databaseId: 'db', name: 'Database' });
expect('database', [db.$id, db.type], ['db', 'tablesdb']);
const table = await tables.createTable({
  databaseId: 'db', tableId: 'birthdays', name: 'Birthdays',
  permissions: [Permission.create(Role.users())], rowSecurity: true,
});
expect('table', [table.$id, table.rowSecurity], ['birthdays', true]);
for (const [rowId, name, birthday, letter] of [
  ['doc1', 'Kevin', '2012-02-03', 'a'], ['doc2', 'Laura', '1999-09-22', 'b'], ['doc3', 'Bob', '1982-05-11', 'c'],
]) {
  const user = await new Account(client()).create({ userId: `user-${letter}`, email: `${letter}@example.com`, password: `password-${letter}` });
  expect(`sign-up ${user.$id}`, [user.$id, user.prefs], [`user-${letter}`, {}]);
  const row = await tables.createRow({
    databaseId: 'db', tableId: 'birthdays', rowId, data: { name, birthday },
    permissions: [Permission.read(Role.user(`user-${letter}`))],
  });
  expect(`row ${rowId}`, [row.$id, row.$tableId, typeof row.$sequence, row.name], [rowId, 'birthdays', 'string', name]);
}
const browser = await new Account(client()).createEmailPasswordSession({ email: 'a@example.com', password: 'password-a' });
expect("a browser's sign-in shows no secret", browser.secret, '');
const session = await new Account(admin).createEmailPasswordSession({ email: 'a@example.com', password: 'password-a' });
const withSession = client().setSession(session.secret);
expect('account by session', (await new Account(withSession).get()).$id, 'user-a');
const { jwt } = await new Account(withSession).createJWT();
const backend = client().setJWT(jwt);
let page = await new TablesDB(backend).listRows({ databaseId: 'db', tableId: 'birthdays' });
expect("backend with user-a's token", [page.total, page.rows.map((r) => r.name)], [1, ['Kevin']]);
page = await tables.listRows({ databaseId: 'db', tableId: 'birthdays', queries: [Query.lessThan('birthday', '2000-01-01'), Query.orderAsc('name')] });
expect('key: born before 2000', page.rows.map((r) => r.name), ['Bob', 'Laura']);
page = await tables.listRows({ databaseId: 'db', tableId: 'birthdays', queries: [Query.limit(2)], total: false });
expect('total=false', [page.total, page.rows.length], [0, 2]);
await refused('a token minting a token', () => new Account(backend).createJWT(), 403, 'user_jwt_creation_denied');
await refused("another user's row", () => new TablesDB(backend).getRow({ databaseId: 'db', tableId: 'birthdays', rowId: 'doc2' }), 404, 'row_not_found');

// Columns, indexes, rows; the same through the Databases API.
await tables.createTable({ databaseId: 'db', tableId: 'books', name: 'Books', permissions: [Permission.read(Role.users())] });
expect('varchar column', (await tables.createVarcharColumn({ databaseId: 'db', tableId: 'books', key: 'title', size: 100, required: true })).type, 'varchar');
expect('integer column', (await tables.createIntegerColumn({ databaseId: 'db', tableId: 'books', key: 'pages', required: false })).type, 'integer');
expect('datetime column', (await tables.createDatetimeColumn({ databaseId: 'db', tableId: 'books', key: 'published', required: false })).format, 'datetime');
const index = await tables.createIndex({ databaseId: 'db', tableId: 'books', key: 'by_title', type: 'unique', columns: ['title'] });
expect('index', [index.key, index.status, index.columns], ['by_title', 'available', ['title']]);
const book = await tables.createRow({ databaseId: 'db', tableId: 'books', rowId: ID.unique(), data: { title: 'Dune', pages: 412, published: '1965-08-01' } });
expect('datetime in UTC', book.published, '1965-08-01T00:00:00.000+00:00');
await refused('unique index', () => tables.createRow({ databaseId: 'db', tableId: 'books', rowId: 'b2', data: { title: 'Dune' } }), 409, 'row_already_exists');
const updated = await tables.updateRow({ databaseId: 'db', tableId: 'books', rowId: book.$id, data: { pages: 413 } });
expect('row updated', updated.pages, 413);
expect('columns', (await tables.listColumns({ databaseId: 'db', tableId: 'books' })).total, 3);
const legacy = new Databases(admin);
const docs = await legacy.listDocuments({ databaseId: 'db', collectionId: 'birthdays' });
expect('Databases API: documents', [docs.total, docs.documents[0].$collectionId], [3, 'birthdays']);
expect('Databases API: attributes', (await legacy.listAttributes({ databaseId: 'db', collectionId: 'books' })).total, 3);
await refused('Databases API: missing document', () => legacy.getDocument({ databaseId: 'db', collectionId: 'books', documentId: 'nothing' }), 404, 'document_not_found');

// Row writes: increment, decrement, upsert, bulk (key only), delete.
const step = { databaseId: 'db', tableId: 'books', rowId: book.$id, column: 'pages' };
expect('increment', (await tables.incrementRowColumn({ ...step, value: 2, max: 500 })).pages, 415);
expect('decrement', (await tables.decrementRowColumn({ ...step, value: 1, min: 0 })).pages, 414);
expect('upsert', (await tables.upsertRow({ databaseId: 'db', tableId: 'books', rowId: 'e1', data: { title: 'Emma' } })).title, 'Emma');
const books = { databaseId: 'db', tableId: 'books' };
expect('bulk create', (await tables.createRows({ ...books, rows: [{ $id: 'm1', title: 'M1', pages: 1 }, { $id: 'm2', title: 'M2', pages: 1 }] })).total, 2);
const upserted = await tables.upsertRows({ ...books, rows: [{ $id: 'm1', pages: 2 }, { $id: 'm3', title: 'M3', pages: 2 }] });
expect('bulk upsert', upserted.rows.map((r) => r.$id).sort(), ['m1', 'm3']);
expect('bulk update', (await tables.updateRows({ ...books, data: { pages: 3 }, queries: [Query.equal('pages', [2])] })).total, 2);
const removed = await tables.deleteRows({ ...books, queries: [Query.startsWith('title', 'M')] });
expect('bulk delete', removed.rows.map((r) => r.$id).sort(), ['m1', 'm2', 'm3']);
await tables.deleteRow({ ...books, rowId: 'e1' });
await refused('deleted row', () => tables.getRow({ ...books, rowId: 'e1' }), 404, 'row_not_found');

// A user's transactions: staged, committed as the user, all or nothing.
const asA = new TablesDB(withSession);
const birthdays = { databaseId: 'db', tableId: 'birthdays' };
const tx = await asA.createTransaction({ ttl: 60 });
expect('transaction', [tx.status, tx.operations], ['pending', 0]);
await asA.createRow({ ...birthdays, rowId: 'a2', data: { name: 'Ann' }, transactionId: tx.$id });
expect('staged', (await asA.getTransaction({ transactionId: tx.$id })).operations, 1);
await refused('not there before the commit', () => asA.getRow({ ...birthdays, rowId: 'a2' }), 404, 'row_not_found');
expect('user-a commits', (await asA.updateTransaction({ transactionId: tx.$id, commit: true })).status, 'committed');
expect("user-a's new row", (await asA.getRow({ ...birthdays, rowId: 'a2' })).name, 'Ann');
const tx2 = await asA.createTransaction();
await asA.deleteRow({ ...birthdays, rowId: 'a2', transactionId: tx2.$id });
await asA.updateRow({ ...birthdays, rowId: 'doc1', data: { name: 'K' }, transactionId: tx2.$id });
await refused('a commit with an operation user-a may not make', () => asA.updateTransaction({ transactionId: tx2.$id, commit: true }), 401, 'user_unauthorized');
expect('so its delete did not land', (await asA.getRow({ ...birthdays, rowId: 'a2' })).name, 'Ann');
await refused('bulk writes need a key', () => asA.deleteRows(birthdays), 401, 'user_unauthorized');
await refused('a user listing users (a scope the role lacks)', () => new Users(withSession).list(), 401, 'general_unauthorized_scope');
const legacyA = new Databases(withSession);
const tx3 = await legacyA.createTransaction();
await legacyA.deleteDocument({ databaseId: 'db', collectionId: 'birthdays', documentId: 'a2', transactionId: tx3.$id });
expect('Databases API: transaction', (await legacyA.updateTransaction({ transactionId: tx3.$id, commit: true })).status, 'committed');
await refused('deleted by it', () => asA.getRow({ ...birthdays, rowId: 'a2' }), 404, 'row_not_found');
expect("user-a's transactions", (await asA.listTransactions()).total, 3);

// Users and teams.
const users = new Users(admin);
const one = await users.list({ queries: [Query.limit(1)] });
expect('users.list limit(1)', [one.total, one.users.length], [3, 1]);
expect('users.list search', (await users.list({ search: 'c' })).users.map((u) => u.$id), ['user-c']);
expect('user prefs', await users.updatePrefs({ userId: 'user-b', prefs: { theme: 'dark' } }), { theme: 'dark' });
expect('user with prefs', (await users.get({ userId: 'user-b' })).prefs, { theme: 'dark' });
const minted = await users.createJWT({ userId: 'user-a', duration: 60 });
page = await new TablesDB(client().setJWT(minted.jwt)).listRows({ databaseId: 'db', tableId: 'birthdays' });
expect('users.createJWT acts as user-a', page.rows.map((r) => r.name), ['Kevin']);
await refused('duplicate user', () => users.create({ userId: 'user-a', email: 'x@example.com', password: 'password-x' }), 409, 'user_already_exists');
await refused('wrong password', () => new Account(client()).createEmailPasswordSession({ email: 'a@example.com', password: 'wrong-one' }), 401, 'user_invalid_credentials');
expect('account name', (await new Account(withSession).updateName({ name: 'Ann' })).name, 'Ann');
await refused('an email change with a wrong password', () => new Account(withSession).updateEmail({ email: 'ann@example.com', password: 'wrong-one' }), 401, 'user_invalid_credentials');
expect('account email', (await new Account(withSession).updateEmail({ email: 'ann@example.com', password: 'password-a' })).email, 'ann@example.com');
expect('account password', (await new Account(withSession).updatePassword({ password: 'password-a2', oldPassword: 'password-a' })).$id, 'user-a');
expect('users: name', (await users.updateName({ userId: 'user-c', name: 'Cy' })).name, 'Cy');
expect('users: email', (await users.updateEmail({ userId: 'user-c', email: 'cy@example.com' })).email, 'cy@example.com');
expect('users: password', (await users.updatePassword({ userId: 'user-c', password: 'password-c2' })).$id, 'user-c');
const teams = new Teams(admin);
const team = await teams.create({ teamId: 't1', name: 'Team' });
expect('team', [team.$id, team.total, team.prefs], ['t1', 0, {}]);
const member = await teams.createMembership({ teamId: 't1', roles: ['editor'], userId: 'user-b' });
expect('membership', [member.userId, member.teamName, member.roles], ['user-b', 'Team', ['editor']]);
expect('team total', (await teams.get({ teamId: 't1' })).total, 1);
await new Account(withSession).deleteSession({ sessionId: 'current' });
await refused('the token after logout', () => new TablesDB(backend).listRows({ databaseId: 'db', tableId: 'birthdays' }), 401, 'user_jwt_invalid');
await refused('an unknown route', () => admin.call('get', new URL(endpoint + '/nothing'), {}, {}), 404, 'general_route_not_found');
console.log(`${checks} checks passed through node-appwrite 27.1.0`);
