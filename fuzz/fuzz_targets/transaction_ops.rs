//! Transaction operations (Appwrite's operation objects): reading them never panics, and
//! whatever commits leaves every index consistent with the documents.
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use permdb::{AttributeSpec, CollectionSpec, Db, IndexSpec, Permission, Role};

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let db = Db::temporary().expect("a temporary store");
        let root = db.root();
        root.schemas().create("db", "db").expect("schema");
        let collections = root.schema("db").collections();
        let spec = CollectionSpec::new("t", "t")
            .permissions([Permission::create(Role::users())])
            .document_security(true);
        collections.create(spec).expect("collection");
        collections
            .create_attribute("t", AttributeSpec::integer("n"))
            .expect("attribute");
        collections
            .create_attribute("t", AttributeSpec::string("s", 16))
            .expect("attribute");
        collections
            .create_index("t", IndexSpec::unique("by_s", ["s"]))
            .expect("index");
        collections
            .create_index("t", IndexSpec::key("by_n", ["n"]))
            .expect("index");
        db
    })
}

fuzz_target!(|data: &[u8]| {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let db = db();
    let (_, committed) = permdb::fuzzing::commit_operations(&db.root(), text);
    // `verify` reads the whole store: now and then, and after every commit early on.
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    if committed && (run < 1000 || run % 64 == 0) {
        let report = db.verify().expect("verify runs");
        assert_eq!(report.problems, 0, "{:?}", report.details);
    }
});
