//! The right to act: which replica may write, for how long, and with which store.
//!
//! Owns: [`Seat`] and its three kinds — the state directory (its writer's lock for one pass),
//! one shared store (tests), PostgreSQL (a lease with fencing tokens, renewed in the
//! background every `ttl / 3`). Must not touch: what a pass does. The lease is judged twice:
//! by the database's clock on every store write (fencing, `state::pg`), and here by the
//! local monotonic clock before every API write ([`Seat::halted`]): a replica paused
//! (SIGSTOP) past its lease and resumed stops before it sends anything, because the
//! monotonic clock ran on while it was stopped.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::state::{Lease, PgStore, RecordStore, StateArgs, StoreFuture};

/// Whether this replica may act now, and with which store.
pub enum Role {
    /// It acts this pass; writes go to `store`.
    Leader { store: Arc<dyn RecordStore> },
    /// Another replica acts.
    Standby { leader: String },
}

/// The right to act: taken before each pass, left on shutdown.
pub trait Seat: Send + Sync {
    fn take(&self) -> StoreFuture<'_, Role>;
    fn leave(&self) -> StoreFuture<'_, ()>;
    /// `Some(why)` when this replica must not send anything more (its lease ran out).
    fn halted(&self) -> Option<String> {
        None
    }
    /// For logs and errors: where the state is (no credentials).
    fn describe(&self) -> String;
}

/// The state directory: its writer's lock for the length of a pass, so `ovhform apply` by a
/// person can run between passes.
pub struct DirSeat(pub StateArgs);

impl Seat for DirSeat {
    fn take(&self) -> StoreFuture<'_, Role> {
        Box::pin(async move {
            let store = self.0.open_locked()?;
            Ok(Role::Leader {
                store: Arc::new(store),
            })
        })
    }
    fn leave(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn describe(&self) -> String {
        format!("state directory {}", self.0.state_dir.display())
    }
}

/// One shared store, always the leader (tests, single-replica embeddings).
pub struct SharedSeat(pub Arc<dyn RecordStore>);

impl Seat for SharedSeat {
    fn take(&self) -> StoreFuture<'_, Role> {
        Box::pin(async move {
            Ok(Role::Leader {
                store: self.0.clone(),
            })
        })
    }
    fn leave(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn describe(&self) -> String {
        "in-memory store".into()
    }
}

/// A PostgreSQL lease.
pub struct PgSeat {
    store: Arc<PgStore>,
    ttl: Duration,
    /// Until when (monotonic) this replica's lease surely holds; `None`: not the leader.
    deadline: Arc<Mutex<Option<Instant>>>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Default lease: a standby polling every 2 s takes over at most 12 s after the leader died.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

impl PgSeat {
    pub fn new(store: PgStore, ttl: Duration) -> PgSeat {
        PgSeat {
            store: Arc::new(store),
            ttl,
            deadline: Arc::new(Mutex::new(None)),
            renewer: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &Arc<PgStore> {
        &self.store
    }

    /// One campaign: the deadline is counted from *before* the request, so it never outlives
    /// the database's `until` (which is at least `ttl` after the request reached it).
    async fn campaign(
        store: &PgStore,
        ttl: Duration,
        deadline: &Mutex<Option<Instant>>,
    ) -> Result<Lease, crate::state::StateError> {
        let sent = Instant::now();
        let lease = store.campaign(ttl).await;
        let mut d = deadline.lock().unwrap_or_else(PoisonError::into_inner);
        match &lease {
            Ok(Lease::Leader { .. }) => *d = Some(sent + ttl),
            _ => *d = None,
        }
        lease
    }

    fn ensure_renewer(&self) {
        let mut slot = self.renewer.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let store = self.store.clone();
        let deadline = self.deadline.clone();
        let ttl = self.ttl;
        *slot = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match PgSeat::campaign(&store, ttl, &deadline).await {
                    Ok(Lease::Leader { .. }) => {}
                    Ok(Lease::Standby { .. }) => {
                        tracing::warn!("leader lease lost to another replica");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "leader lease not renewed"),
                }
            }
        }));
    }
}

impl Seat for PgSeat {
    fn take(&self) -> StoreFuture<'_, Role> {
        Box::pin(async move {
            match PgSeat::campaign(&self.store, self.ttl, &self.deadline).await? {
                Lease::Leader { token, .. } => {
                    tracing::debug!(token, "leader");
                    self.ensure_renewer();
                    Ok(Role::Leader {
                        store: self.store.clone(),
                    })
                }
                Lease::Standby { leader, .. } => Ok(Role::Standby { leader }),
            }
        })
    }

    fn leave(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if let Some(h) = self
                .renewer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                h.abort();
            }
            *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = None;
            // A graceful stop hands over at once instead of after the lease's ttl.
            self.store.resign().await?;
            Ok(())
        })
    }

    fn halted(&self) -> Option<String> {
        let d = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        match d {
            Some(until) if Instant::now() < until => None,
            _ => Some("no longer the leader (lease expired or lost)".into()),
        }
    }

    fn describe(&self) -> String {
        format!(
            "PostgreSQL {} (fleet {})",
            self.store.target(),
            self.store.fleet()
        )
    }
}
