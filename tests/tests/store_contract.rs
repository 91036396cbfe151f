//! The storage contract suite (`rekomi_e2e::contract`) run against every store: one test per
//! contract function and backend, `in_memory::<name>` against `rekomi_fakes::InMemoryStore`
//! and `postgres::<name>` against `rekomi_postgres::PgStore` on a fresh database of its own.
//! Filter a backend with `cargo test -p rekomi-e2e --test store_contract in_memory::`.

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        /// The in-memory fake of `rekomi-fakes`.
        mod in_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = rekomi_fakes::InMemoryStore::new();
                    rekomi_e2e::contract::$name(&store).await;
                }
            )*
        }

        /// PostgreSQL through `rekomi-postgres`, one database per test (skipped without a
        /// reachable server unless `CI=true`).
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    // Declared before the store, so the pool closes before the database drops.
                    let Some(db) = rekomi_e2e::db::TestDb::create() else { return };
                    let store = match rekomi_postgres::PgStore::connect(db.url(), 4) {
                        Ok(store) => store,
                        Err(e) => panic!("connecting to {}: {e:?}", db.name()),
                    };
                    rekomi_e2e::contract::$name(&store).await;
                }
            )*
        }
    };
}

rekomi_e2e::storage_contract!(contract_tests);
