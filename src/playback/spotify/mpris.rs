//! MPRIS (placeholder).
use tokio::sync::mpsc;
use super::Report;
pub async fn follow(_c: crate::config::SpotifyConfig, _tx: mpsc::Sender<Report>) {}
