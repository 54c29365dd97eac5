//! The seed scenario (docs/ARCHITECTURE.md, "The seed scenario") on the embedded on-disk store, through the
//! real chain (see `permdb::demo`): users sign up and sign in with email and password,
//! user-a trades the session for a 15-minute token, and a backend acts as user-a with
//! that token. An API key sees everything. Then the token is refused after logout and
//! after 15 minutes (moved by an injectable clock, so the example does not sleep).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("permdb-seed-{}", std::process::id()));
    let result = permdb::demo::seed_scenario(&dir, &mut std::io::stdout());
    let _ = std::fs::remove_dir_all(&dir);
    result
}
