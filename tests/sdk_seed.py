"""The seed scenario through the official Appwrite Python SDK against `permdb serve`.

Run by .ci/run with PERMDB_ENDPOINT (http://127.0.0.1:PORT/v1) and PERMDB_KEY (an API key
with every scope). Exits non-zero, saying why, at the first difference.
"""

import os
import sys

from appwrite.client import Client
from appwrite.exception import AppwriteException
from appwrite.permission import Permission
from appwrite.role import Role
from appwrite.services.account import Account
from appwrite.services.databases import Databases

ENDPOINT = os.environ["PERMDB_ENDPOINT"]
KEY = os.environ["PERMDB_KEY"]


def client():
    return Client().set_endpoint(ENDPOINT).set_project("default")


def expect(what, got, want):
    if got != want:
        sys.exit(f"FAIL {what}: got {got!r}, want {want!r}")
    print(f"ok   {what}: {got!r}")


def refused(what, call, code, kind):
    try:
        call()
    except AppwriteException as e:
        expect(what, (e.code, e.type), (code, kind))
        return
    sys.exit(f"FAIL {what}: accepted")


admin = client().set_key(KEY)
databases = Databases(admin)
databases.create("db", "Database")
databases.create_collection(
    "db",
    "birthdays",
    "Birthdays",
    permissions=[Permission.create(Role.users())],
    document_security=True,
)
for doc_id, name, day, letter in [
    ("doc1", "Kevin", "2012-02-03", "a"),
    ("doc2", "Laura", "1999-09-22", "b"),
    ("doc3", "Bob", "1982-05-11", "c"),
]:
    user = Account(client()).create(f"user-{letter}", f"{letter}@example.com", f"password-{letter}")
    expect(f"sign-up user-{letter}", user["$id"], f"user-{letter}")
    databases.create_document(
        "db", "birthdays", doc_id, {"name": name, "birthday": day},
        permissions=[Permission.read(Role.user(f"user-{letter}"))],
    )

# A browser's sign-in gets the session in an HttpOnly cookie only; the secret is in the
# answer only for an app's server signing its user in with the API key (as Appwrite does).
browser_session = Account(client()).create_email_password_session("a@example.com", "password-a")
expect("a browser's sign-in shows no secret", browser_session["secret"], "")
session = Account(admin).create_email_password_session("a@example.com", "password-a")
with_session = client().set_session(session["secret"])
expect("account by session", Account(with_session).get()["$id"], "user-a")
jwt = Account(with_session).create_jwt()["jwt"]

backend = client().set_jwt(jwt)
page = Databases(backend).list_documents("db", "birthdays")
expect("backend with user-a's token", (page["total"], [d["name"] for d in page["documents"]]), (1, ["Kevin"]))
page = Databases(admin).list_documents("db", "birthdays")
expect("API key", page["total"], 3)

from appwrite.query import Query  # noqa: E402

page = Databases(admin).list_documents(
    "db", "birthdays", [Query.less_than("birthday", "2000-01-01"), Query.order_asc("name")]
)
expect("API key, born before 2000", [d["name"] for d in page["documents"]], ["Bob", "Laura"])

refused("a token minting a token", lambda: Account(backend).create_jwt(), 403, "user_jwt_creation_denied")
refused("another user's document", lambda: Databases(backend).get_document("db", "birthdays", "doc2"), 404, "document_not_found")
Account(with_session).delete_session("current")
refused("the token after logout", lambda: Databases(backend).list_documents("db", "birthdays"), 401, "user_jwt_invalid")
print("the seed scenario passed through the Appwrite Python SDK")
