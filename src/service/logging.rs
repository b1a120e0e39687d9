//! `tracing` to the journal when stderr is the journal (`JOURNAL_STREAM`), else readable
//! stderr. `RUST_LOG` filters (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// True when systemd connected our stderr to the journal: `JOURNAL_STREAM` names its
/// device:inode, which must still be stderr (a child with redirected stderr must not log there).
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    // stderr's own device and inode, through a duplicate of the fd (no unsafe fstat).
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(meta) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    else {
        return false;
    };
    let (st_dev, st_ino) = (meta.dev(), meta.ino());
    dev.parse::<u64>() == Ok(st_dev) && ino.parse::<u64>() == Ok(st_ino)
}

/// Installs the global subscriber; `identifier` is the binary (`vj-oscdebug`).
pub fn init(identifier: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let mut journald_error = None;
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journald) => {
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(journald.with_syslog_identifier(identifier.to_string()))
                    .try_init();
                return;
            }
            Err(e) => journald_error = Some(e),
        }
    }
    if journald_error.is_some() {
        // stderr is the journal, its socket out of reach: journald stamps the time itself and
        // reads a `<N>` prefix as the priority, so each line is that and the sentence.
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .event_format(JournalStream)
                    .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                        |w, field, value| match field.name() {
                            "message" => write!(w, "{value:?}"),
                            _ => Ok(()),
                        },
                    )),
            )
            .try_init();
    } else {
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .try_init();
    }
    if let Some(e) = journald_error {
        tracing::warn!(error = %e, "cannot log to the journal directly ({e}); logging to stderr");
    }
}

/// A journal stream line: `<priority>` then the message alone.
struct JournalStream;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JournalStream
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
