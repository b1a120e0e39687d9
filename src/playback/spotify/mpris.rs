//! MPRIS (placeholder).
use super::Report;
use tokio::sync::mpsc;
pub async fn follow(_c: crate::config::SpotifyConfig, _tx: mpsc::Sender<Report>) {}
