//! Password hashing off the async workers.
//!
//! A bcrypt check costs milliseconds to seconds of CPU on purpose. Run on a tokio
//! worker, a few clients sending wrong passwords for a bcrypt user stall every other
//! connection on that worker. [`check`] runs a check that needs bcrypt
//! ([`Authenticator::is_costly`]) on the blocking pool, at most [`permits`] at a time
//! (later ones wait their turn, without holding a worker); every other check runs
//! inline, as before. A check that fails to run refuses the client (fail closed).

use std::sync::LazyLock;

use tokio::sync::Semaphore;

#[cfg(doc)]
use super::Authenticator;
use super::{AuthError, Identity};

/// The bcrypt checks that may run at once.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(permits()));

/// Half the cores (at least one): hashing never takes all the CPU from the workers.
pub fn permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Runs `check`: on the blocking pool, at most [`permits`] at a time, when it is
/// `costly` ([`Authenticator::is_costly`]), else inline.
///
/// # Errors
/// `check`'s [`AuthError`], or [`AuthError::NoMatch`] when it could not run.
pub async fn check<F>(costly: bool, check: F) -> Result<Identity, AuthError>
where
    F: FnOnce() -> Result<Identity, AuthError> + Send + 'static,
{
    if !costly {
        return check();
    }
    let Ok(_permit) = HASHING.acquire().await else {
        return Err(AuthError::NoMatch);
    };
    tokio::task::spawn_blocking(check)
        .await
        .unwrap_or(Err(AuthError::NoMatch))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rill_protocol::Connect;

    use super::*;
    use crate::auth::Authenticator;
    use crate::config::Config;

    /// On a single-threaded runtime, another task runs while a bcrypt check is under
    /// way: the check does not hold the runtime's only worker.
    #[tokio::test(flavor = "current_thread")]
    async fn a_bcrypt_check_leaves_the_worker_free() {
        let hash = bcrypt::hash("s3cret", 10).expect("hash");
        let config = Config {
            authorization: crate::config::Authorization {
                user: Some("bob".into()),
                password: Some(hash),
                ..Default::default()
            },
            ..Config::default()
        };
        let auth = Arc::new(Authenticator::new(&config));
        let connect = Connect {
            user: Some("bob".into()),
            pass: Some("wrong".into()),
            ..Connect::default()
        };
        assert!(auth.is_costly(&connect));
        let order = Arc::new(AtomicUsize::new(0));
        let (o1, o2) = (Arc::clone(&order), Arc::clone(&order));
        let check = tokio::spawn(async move {
            let r = check(true, move || auth.authenticate(&connect, None, None)).await;
            (r, o1.fetch_add(1, Ordering::SeqCst))
        });
        let other = tokio::spawn(async move { o2.fetch_add(1, Ordering::SeqCst) });
        let (r, check_at) = check.await.expect("check");
        let other_at = other.await.expect("other");
        assert!(r.is_err());
        assert_eq!((other_at, check_at), (0, 1), "the other task ran first");
    }
}
