//! The storage contract suite (`rekomi_e2e::contract`) run against every store: one test per
//! contract function and backend, `in_memory::<name>` against `rekomi_fakes::InMemoryStore`
//! and `postgres::<name>` against `rekomi_postgres::PgStore` on a fresh database of its own.
//! Filter a backend with `cargo test -p rekomi-e2e --test store_contract in_memory::`.

macro_rules! contract_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// The in-memory fake of `rekomi-fakes`.
        mod in_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = rekomi_fakes::InMemoryStore::new();
                    rekomi_e2e::contract::$module::$name(&store).await;
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
                    rekomi_e2e::contract::$module::$name(&store).await;
                }
            )*
        }
    };
}

rekomi_e2e::storage_contract!(contract_tests);

/// PostgreSQL only: concurrent claims, which the in-memory store cannot show (it runs one
/// transaction at a time). One worker claims and keeps its transaction open, so its lease is
/// not committed yet and only the row locks keep the second worker off its rows.
#[allow(clippy::expect_used, reason = "test code: a panic is a failed test")]
mod postgres_concurrency {
    use std::sync::mpsc;
    use std::time::Duration as StdDuration;

    use rekomi_domain::ports::store::{transact, StoreError, UnitOfWork};
    use rekomi_e2e::contract::fixtures::{delivery, endpoint, inbox_event, org, outbox_event, seed, Seed, T0};
    use time::Duration;

    /// Runs `claim` in worker A's transaction, held open until B's claim returned; returns
    /// (A's ids, B's ids).
    async fn race<T, F>(store: &rekomi_postgres::PgStore, claim: F) -> (Vec<T>, Vec<T>)
    where
        T: Send + 'static,
        F: Fn(&mut dyn rekomi_domain::ports::store::Tx) -> Result<Vec<T>, StoreError> + Clone + Send + 'static,
    {
        let (claimed_tx, claimed_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let a_store = store.clone();
        let a_claim = claim.clone();
        let a = tokio::spawn(async move {
            transact(&a_store, move |tx| {
                let got = a_claim(tx)?;
                let _ = claimed_tx.send(());
                // Bounded, so a store that blocks B (no SKIP LOCKED) fails the test instead of
                // hanging it.
                let _ = release_rx.recv_timeout(StdDuration::from_secs(10));
                Ok::<_, StoreError>(got)
            })
            .await
        });
        tokio::task::spawn_blocking(move || claimed_rx.recv_timeout(StdDuration::from_secs(10)))
            .await
            .expect("waiting for worker A")
            .expect("worker A claimed");
        let b = tokio::time::timeout(StdDuration::from_secs(5), transact(store as &dyn UnitOfWork, claim)).await;
        let _ = release_tx.send(());
        let a = a.await.expect("worker A finished").expect("worker A's transaction");
        let b = b.expect("worker B was blocked by A's rows instead of skipping them").expect("worker B's transaction");
        (a, b)
    }

    fn connect() -> Option<(rekomi_e2e::db::TestDb, rekomi_postgres::PgStore)> {
        let db = rekomi_e2e::db::TestDb::create()?;
        let store = match rekomi_postgres::PgStore::connect(db.url(), 4) {
            Ok(store) => store,
            Err(e) => panic!("connecting to {}: {e:?}", db.name()),
        };
        Some((db, store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inbox_claims_never_take_the_same_event() {
        let Some((_db, store)) = connect() else { return };
        let a = org(1, "acme");
        let events = (1301..1305).map(|n| inbox_event(n, Some(&a), T0 - Duration::minutes(2000 - n as i64))).collect();
        seed(&store, Seed { orgs: vec![a], inbox: events, ..Seed::default() }).await;

        let lease = T0 + Duration::minutes(5);
        let (first, second) = race(&store, move |tx| {
            let claimed = tx.claim_inbox_events(T0, lease, 2)?;
            Ok(claimed.into_iter().map(|e| e.id).collect::<Vec<_>>())
        })
        .await;
        assert_eq!(first, ["evt_1301", "evt_1302"]);
        assert_eq!(second, ["evt_1303", "evt_1304"], "the second worker skips the rows the first holds");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_delivery_claims_never_take_the_same_delivery() {
        let Some((_db, store)) = connect() else { return };
        let a = org(1, "acme");
        let (hook, event) = (endpoint(&a, 1000), outbox_event(&a, 1100));
        let deliveries = (1200..1204).map(|n| delivery(&hook, &event, n, T0 - Duration::minutes(2000 - n as i64))).collect();
        seed(&store, Seed { orgs: vec![a], endpoints: vec![hook], outbox: vec![event], deliveries, ..Seed::default() }).await;

        let lease = T0 + Duration::minutes(5);
        let (first, second) = race(&store, move |tx| {
            let claimed = tx.claim_deliveries(T0, lease, 2)?;
            Ok(claimed.into_iter().map(|d| d.id.as_uuid().as_u128()).collect::<Vec<_>>())
        })
        .await;
        assert_eq!(first, [1200, 1201]);
        assert_eq!(second, [1202, 1203], "the second worker skips the rows the first holds");
    }
}
