//! Worker: placeholder.
use serde_json::Map;
pub struct AudioAnalyzer;
impl crate::worker::Worker for AudioAnalyzer {
    const BUS_NAME: &'static str = "audio_analyzer";
    const CONFIG_SECTION: &'static str = "audio";
    async fn start(_ctx: &crate::worker::Context) -> anyhow::Result<Self> { Ok(AudioAnalyzer) }
    async fn run(self: std::sync::Arc<Self>, mut ctx: crate::worker::Context) -> anyhow::Result<()> { ctx.stopped().await; Ok(()) }
    fn state(&self) -> Map<String, serde_json::Value> { Map::new() }
}
