//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds
//! `migrations/` at compile time, and cargo does not otherwise notice a new file there
//! (a binary built before would create a schema without it).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
