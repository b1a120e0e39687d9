//! The terminal and the event loop: raw mode and the alternate screen while the console runs,
//! the terminal given back on every way out (quit, SIGTERM, an error, a panic), and a loop that
//! reads keys, takes the I/O side's updates and redraws at a steady rate. When the terminal
//! goes away (the SSH session or tmux server gone) the process ends at once.

use std::io::{self, BufWriter};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::Terminal;

use super::app::App;
use super::feed::{Feed, Request};
pub use super::screen::{restore, Screen};

/// While the log pane is open it is read again this often.
const LOGS_EVERY: Duration = Duration::from_secs(2);

/// Ends the process as soon as the terminal on stdout hangs up (its other end closed: an SSH
/// session dropped, the tmux server killed), watched by a thread of its own that sleeps in
/// `poll` until then. It does not wait for the event loop: crossterm's reader retries a tty
/// that reads EOF or EIO forever, so after a hangup the loop spins in `event::poll`, hears no
/// signal and takes no update (found as a console at 87 % of a core and 857 MB, 70 minutes
/// after its tmux server was killed).
pub fn exit_when_the_terminal_goes() -> io::Result<()> {
    std::thread::Builder::new()
        .name("vj-console-tty".into())
        .spawn(|| {
            let mut fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                // None asked for: poll still reports a hangup, an error or a closed fd.
                events: 0,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd, and its count; a timeout of -1 waits until an event.
                let n = unsafe { libc::poll(&mut fd, 1, -1) };
                if n > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                    break;
                }
                if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            // Nothing to restore: the terminal is gone.
            std::process::exit(1);
        })?;
    Ok(())
}

/// What a run drew.
#[derive(Debug, Clone, Copy)]
pub struct Drawn {
    pub frames: u64,
    pub elapsed: Duration,
}

/// Runs the console until `q`, a signal, or `quit_after`.
pub fn run(
    app: &mut App,
    feed: &Feed,
    fps: f64,
    quit_after: Option<Duration>,
) -> io::Result<Drawn> {
    exit_when_the_terminal_goes()?;
    let _screen = Screen::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(BufWriter::new(io::stdout())))?;
    terminal.clear()?;
    let every = Duration::from_secs_f64(1.0 / fps.clamp(1.0, 120.0));
    let started = Instant::now();
    let mut next = started;
    let mut frames = 0u64;
    let mut logs_asked = started;
    loop {
        if event::poll(next.saturating_duration_since(Instant::now()))? {
            loop {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        if let Some(r) = app.on_key(k) {
                            if matches!(r, Request::Logs(_)) {
                                logs_asked = Instant::now();
                            }
                            feed.send(r);
                        }
                    }
                    // Reflow now, not at the next tick.
                    Event::Resize(..) => next = Instant::now(),
                    _ => {}
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        loop {
            match feed.updates.try_recv() {
                Ok(u) => app.apply(u),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(io::Error::other("the console's I/O thread ended"));
                }
            }
        }
        if app.quit.is_some() || quit_after.is_some_and(|q| started.elapsed() >= q) {
            break;
        }
        if let Some(pane) = &app.workers.logs {
            if logs_asked.elapsed() >= LOGS_EVERY {
                logs_asked = Instant::now();
                feed.send(Request::Logs(pane.worker));
            }
        }
        let now = Instant::now();
        if now >= next {
            app.now = now;
            terminal.draw(|f| app.draw(f))?;
            frames += 1;
            next += every;
            if next < now {
                next = now + every;
            }
        }
    }
    Ok(Drawn {
        frames,
        elapsed: started.elapsed(),
    })
}
