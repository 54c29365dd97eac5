"""The seed scenario and the routes permdb serves, through Appwrite's Python SDK 27.0.0
(pinned in requirements.txt) against `permdb serve`: TablesDB, the legacy Databases API,
accounts, sessions, tokens, users and teams.

Every answer is parsed by the SDK into its own model class (a field the model lacks or
mistypes raises), and any warning other than the Databases API's deprecation fails the run.
Run by .ci/run with PERMDB_ENDPOINT (http://127.0.0.1:PORT/v1) and PERMDB_KEY (a key with
every scope); exits non-zero, saying why, at the first difference.
"""

import os
import sys
import warnings

from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.permission import Permission
from appwrite.query import Query
from appwrite.role import Role
from appwrite.services.account import Account
from appwrite.services.databases import Databases
from appwrite.services.tables_db import TablesDB
from appwrite.services.teams import Teams
from appwrite.services.users import Users

warnings.simplefilter("error")
# Appwrite marks the whole Databases service deprecated in favour of TablesDB; permdb
# serves both, and this run calls both on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*[Dd]eprecated.*")

ENDPOINT = os.environ["PERMDB_ENDPOINT"]
KEY = os.environ["PERMDB_KEY"]
CHECKS = 0


def client():
    return Client().set_endpoint(ENDPOINT).set_project("default")


def expect(what, got, want):
    global CHECKS
    if got != want:
        sys.exit(f"FAIL {what}: got {got!r}, want {want!r}")
    CHECKS += 1
    print(f"ok   {what}: {got!r}")


def refused(what, call, code, kind):
    try:
        call()
    except AppwriteException as e:
        expect(what, (e.code, e.type), (code, kind))
        return
    sys.exit(f"FAIL {what}: accepted")


admin = client().set_key(KEY)
tables = TablesDB(admin)

# --- The seed scenario, through TablesDB.
database = tables.create("db", "Database")
expect("TablesDB database", (database.id, database.name, database.enabled), ("db", "Database", True))
table = tables.create_table(
    "db",
    "birthdays",
    "Birthdays",
    permissions=[Permission.create(Role.users())],
    row_security=True,
)
expect("table", (table.id, table.rowsecurity, table.permissions), ("birthdays", True, ['create("users")']))
for row_id, name, day, letter in [
    ("doc1", "Kevin", "2012-02-03", "a"),
    ("doc2", "Laura", "1999-09-22", "b"),
    ("doc3", "Bob", "1982-05-11", "c"),
]:
    user = Account(client()).create(f"user-{letter}", f"{letter}@example.com", f"password-{letter}")
    expect(f"sign-up user-{letter}", (user.id, user.email, user.prefs.data), (f"user-{letter}", f"{letter}@example.com", {}))
    row = tables.create_row(
        "db", "birthdays", row_id, {"name": name, "birthday": day},
        permissions=[Permission.read(Role.user(f"user-{letter}"))],
    )
    expect(f"row {row_id}", (row.id, row.tableid, row.data["name"]), (row_id, "birthdays", name))
    expect(f"row {row_id} $sequence is a string", isinstance(row.sequence, str), True)

browser_session = Account(client()).create_email_password_session("a@example.com", "password-a")
expect("a browser's sign-in shows no secret", browser_session.secret, "")
session = Account(admin).create_email_password_session("a@example.com", "password-a")
expect("the server's sign-in", (session.userid, session.provider, session.current), ("user-a", "email", True))
with_session = client().set_session(session.secret)
me = Account(with_session).get()
expect("account by session", (me.id, me.email), ("user-a", "a@example.com"))
# Python 27 mints tokens on the server side only (users.create_jwt), from a session.
jwt = Users(admin).create_jwt("user-a", session_id=session.id).jwt

backend = client().set_jwt(jwt)
page = TablesDB(backend).list_rows("db", "birthdays")
expect("backend with user-a's token", (page.total, [r.data["name"] for r in page.rows]), (1, ["Kevin"]))
page = tables.list_rows("db", "birthdays")
expect("API key sees every row", page.total, 3)
page = tables.list_rows("db", "birthdays", [Query.less_than("birthday", "2000-01-01"), Query.order_asc("name")])
expect("born before 2000, by name", [r.data["name"] for r in page.rows], ["Bob", "Laura"])
page = tables.list_rows("db", "birthdays", [Query.limit(1)], total=False)
expect("total=false", (page.total, len(page.rows)), (0, 1))
refused(
    "a token minting a token (POST /account/jwts, which Python 27 has no method for)",
    lambda: backend.call("post", "/account/jwts", {"content-type": "application/json"}, {}),
    403,
    "user_jwt_creation_denied",
)
refused("another user's row", lambda: TablesDB(backend).get_row("db", "birthdays", "doc2"), 404, "row_not_found")

# --- Columns, indexes and rows of a typed table.
books = tables.create_table("db", "books", "Books", permissions=[Permission.read(Role.users())])
expect("typed table", books.id, "books")
column = tables.create_varchar_column("db", "books", "title", 100, True)
expect("varchar column", (column.key, column.type, column.size, column.status.value), ("title", "varchar", 100, "available"))
expect("text column", tables.create_text_column("db", "books", "blurb", False).type, "text")
expect("integer column", tables.create_integer_column("db", "books", "pages", False).type, "integer")
expect("float column", tables.create_float_column("db", "books", "price", False).type, "double")
expect("boolean column", tables.create_boolean_column("db", "books", "sold", False).type, "boolean")
expect("datetime column", tables.create_datetime_column("db", "books", "published", False).format, "datetime")
expect("email column", tables.create_email_column("db", "books", "author", False).format, "email")
expect("enum column", tables.create_enum_column("db", "books", "size", ["s", "m"], False).elements, ["s", "m"])
expect("columns listed", tables.list_columns("db", "books").total, 8)
expect("one column", tables.get_column("db", "books", "price").key, "price")
from appwrite.enums.tables_db_index_type import TablesDBIndexType  # noqa: E402

index = tables.create_index("db", "books", "by_title", TablesDBIndexType.UNIQUE, ["title"])
expect("index", (index.key, index.type, index.status, index.columns), ("by_title", "unique", "available", ["title"]))
expect("indexes listed", tables.list_indexes("db", "books").total, 1)
row = tables.create_row("db", "books", "b1", {"title": "Dune", "pages": 412, "published": "1965-08-01"})
expect("datetime stored in UTC", row.data["published"], "1965-08-01T00:00:00.000+00:00")

row = tables.update_row("db", "books", "b1", {"pages": 413})
expect("row updated", row.data["pages"], 413)
row = tables.increment_row_column("db", "books", "b1", "pages", value=5, max=1000)
expect("increment", row.data["pages"], 418)
row = tables.decrement_row_column("db", "books", "b1", "pages", value=5)
expect("decrement", row.data["pages"], 413)
refused("increment past max", lambda: tables.increment_row_column("db", "books", "b1", "pages", value=1, max=413), 400, "row_invalid_structure")
row = tables.upsert_row("db", "books", "b9", {"title": "Emma"})
expect("upsert creates", row.data["title"], "Emma")
row = tables.upsert_row("db", "books", "b9", {"pages": 474})
expect("upsert updates", (row.data["title"], row.data["pages"]), ("Emma", 474))
made = tables.create_rows("db", "books", [{"$id": "r1", "title": "Ulysses"}, {"title": "Ivanhoe"}])
expect("bulk create", (made.total, [r.data["title"] for r in made.rows]), (2, ["Ulysses", "Ivanhoe"]))
refused("unique index", lambda: tables.create_row("db", "books", "b2", {"title": "Dune"}), 409, "row_already_exists")
refused("required column", lambda: tables.create_row("db", "books", "b3", {}), 400, "row_invalid_structure")
refused("missing table", lambda: tables.get_table("db", "nothing"), 404, "table_not_found")
tables.delete_row("db", "books", "b1")
refused("deleted row", lambda: tables.get_row("db", "books", "b1"), 404, "row_not_found")

renamed = tables.update_table("db", "books", name="Library")
expect("table renamed, the rest kept", (renamed.name, renamed.permissions, renamed.rowsecurity), ("Library", ['read("users")'], False))
expect("database renamed", tables.update("db", name="Main").name, "Main")

# --- Transactions: staged operations are invisible until the commit, then land together.
tx = tables.create_transaction(ttl=120)
expect("transaction", (tx.status, tx.operations), ("pending", 0))
staged = tables.create_row("db", "books", "t1", {"title": "Staged"}, transaction_id=tx.id)
expect("a staged row answers as given", (staged.id, staged.data["title"]), ("t1", "Staged"))
tables.increment_row_column("db", "books", "b9", "pages", value=1, transaction_id=tx.id)
tx = tables.create_operations(
    tx.id,
    [{"action": "update", "databaseId": "db", "tableId": "books", "rowId": "r1", "data": {"pages": 100}}],
)
expect("operations staged", tx.operations, 3)
refused("nothing before the commit", lambda: tables.get_row("db", "books", "t1"), 404, "row_not_found")
expect("committed", tables.update_transaction(tx.id, commit=True).status, "committed")
after = [tables.get_row("db", "books", "t1").data["title"], tables.get_row("db", "books", "b9").data["pages"], tables.get_row("db", "books", "r1").data["pages"]]
expect("rows after the commit", after, ["Staged", 475, 100])
failing = tables.create_transaction()
tables.delete_row("db", "books", "t1", transaction_id=failing.id)
tables.create_row("db", "books", "t2", {"title": "Emma"}, transaction_id=failing.id)
refused("a commit whose last operation fails", lambda: tables.update_transaction(failing.id, commit=True), 409, "row_already_exists")
expect("nothing of it landed", tables.get_row("db", "books", "t1").data["title"], "Staged")
expect("failed", tables.get_transaction(failing.id).status, "failed")
rolled = tables.create_transaction()
tables.delete_row("db", "books", "t1", transaction_id=rolled.id)
expect("rolled back", tables.update_transaction(rolled.id, rollback=True).status, "rolled_back")
expect("transactions listed", tables.list_transactions().total, 3)
tables.delete_transaction(rolled.id)
refused("deleted transaction", lambda: tables.get_transaction(rolled.id), 404, "transaction_not_found")
refused("reads inside a transaction", lambda: tables.get_row("db", "books", "t1", transaction_id=failing.id), 400, "general_argument_invalid")

# --- Bulk writes (API keys only), each one atomic write.
upserted = tables.upsert_rows("db", "books", [{"$id": "b9", "pages": 1}, {"$id": "u1", "title": "Upserted", "pages": 1}])
expect("bulk upsert", (upserted.total, sorted(r.id for r in upserted.rows)), (2, ["b9", "u1"]))
updated = tables.update_rows("db", "books", {"sold": True}, [Query.equal("pages", [1])])
expect("bulk update", (updated.total, [r.data["sold"] for r in updated.rows]), (2, [True, True]))
deleted = tables.delete_rows("db", "books", [Query.equal("sold", [True])])
expect("bulk delete", sorted(r.id for r in deleted.rows), ["b9", "u1"])
refused("bulk writes need a key", lambda: TablesDB(backend).delete_rows("db", "birthdays"), 401, "user_unauthorized")

# --- The same data through the legacy Databases API.
legacy = Databases(admin)
documents = legacy.list_documents("db", "birthdays")
expect("Databases API: documents", (documents.total, documents.documents[0].collectionid), (3, "birthdays"))
collection = legacy.get_collection("db", "birthdays")
expect("Databases API: collection", (collection.id, collection.documentsecurity), ("birthdays", True))
expect("Databases API: attributes", legacy.list_attributes("db", "books").total, 8)
expect("Databases API: indexes", legacy.list_indexes("db", "books").total, 1)
refused("Databases API: another user's document", lambda: Databases(backend).get_document("db", "birthdays", "doc2"), 404, "document_not_found")

# --- Users and teams, by key.
users = Users(admin)
listing = users.list([Query.limit(1)])
expect("users.list with limit(1)", (listing.total, len(listing.users)), (3, 1))
expect("users.list search", [u.id for u in users.list(search="b").users], ["user-b"])
prefs = users.update_prefs("user-b", {"theme": "dark"})
expect("user prefs", prefs.data, {"theme": "dark"})
expect("user prefs read back", users.get_prefs("user-b").data, {"theme": "dark"})
expect("user has prefs", users.get("user-b").prefs.data, {"theme": "dark"})
expect("labels", users.update_labels("user-b", ["vip"]).labels, ["vip"])
expect("status", users.update_status("user-c", False).status, False)
refused("a blocked user's sign-in", lambda: Account(client()).create_email_password_session("c@example.com", "password-c"), 401, "user_blocked")
users.update_status("user-c", True)
minted = users.create_jwt("user-a")
page = TablesDB(client().set_jwt(minted.jwt)).list_rows("db", "birthdays")
expect("users.create_jwt acts as user-a", [r.data["name"] for r in page.rows], ["Kevin"])
refused("duplicate user", lambda: users.create("user-a", email="x@example.com", password="password-x"), 409, "user_already_exists")
refused("wrong password", lambda: Account(client()).create_email_password_session("a@example.com", "wrong-password"), 401, "user_invalid_credentials")
account_prefs = Account(with_session).update_prefs({"lang": "fr"})
expect("account prefs", account_prefs.prefs.data, {"lang": "fr"})
expect("account prefs read back", Account(with_session).get_prefs().data, {"lang": "fr"})
expect("account name", Account(with_session).update_name("Ann").name, "Ann")
refused("an email change with a wrong password", lambda: Account(with_session).update_email("ann@example.com", "wrong-password"), 401, "user_invalid_credentials")
expect("account email", Account(with_session).update_email("ann@example.com", "password-a").email, "ann@example.com")
expect("account password", Account(with_session).update_password("password-a2", old_password="password-a").id, "user-a")
expect("the session that changed it stays", Account(with_session).get().email, "ann@example.com")
expect("users: name", users.update_name("user-c", "Cy").name, "Cy")
expect("users: email", users.update_email("user-c", "cy@example.com").email, "cy@example.com")
expect("users: password", users.update_password("user-c", "password-c2").id, "user-c")
sessions = Account(with_session).list_sessions()
expect("sessions listed, secrets hidden", [s.secret for s in sessions.sessions if s.current], [""])

teams = Teams(admin)
team = teams.create("t1", "Team")
expect("team", (team.id, team.total, team.prefs.data), ("t1", 0, {}))
membership = teams.create_membership("t1", roles=["editor"], user_id="user-b")
expect("membership", (membership.userid, membership.teamname, membership.roles), ("user-b", "Team", ["editor"]))
expect("team total", teams.get("t1").total, 1)
expect("memberships", teams.list_memberships("t1").total, 1)
expect("team prefs", teams.update_prefs("t1", {"color": "red"}).data, {"color": "red"})
expect("teams", teams.list().total, 1)
teams.delete("t1")
refused("deleted team", lambda: teams.get("t1"), 404, "team_not_found")

Account(with_session).delete_session("current")
refused("the token after logout", lambda: TablesDB(backend).list_rows("db", "birthdays"), 401, "user_jwt_invalid")
print(f"{CHECKS} checks passed through Appwrite's Python SDK 27.0.0")
