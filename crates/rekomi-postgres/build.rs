//! Rebuilds the crate when a migration changes: `embed_migrations!` reads the SQL files at
//! compile time, and cargo would not otherwise notice edits outside `src/`.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
