//! One way to tell a worker, its threads and its connections to stop.

use tokio::sync::watch;

/// Tells a worker to stop (SIGTERM, or `restart`): await [`Stop::wait`] in a loop, or ask
/// [`Stop::requested`] from a thread.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A stop that is requested when `tx` sends `true` (or is dropped).
    pub fn channel() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Resolves once stop is requested.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}
