//! The terminal while the console runs: raw mode and the alternate screen, given back on every
//! way out (quit, SIGTERM, an error, a panic). Apart from the event loop (`term`) so that the
//! I/O side (`feed`), which hears the signals, can give the terminal back too.

use std::io::{self, Write};

use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};

/// Gives the terminal back: cooked mode, the main screen, a visible cursor. Safe to call twice.
pub fn restore() {
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(out, LeaveAlternateScreen, Show);
    let _ = out.flush();
}

/// Raw mode and the alternate screen until dropped; a panic restores the terminal before its
/// message is printed, so the message is readable and the shell usable, and ends the process:
/// a panic on the I/O thread would otherwise leave a screen that no longer updates, nor hears
/// SIGTERM (the I/O thread listens for signals).
pub struct Screen(());

impl Screen {
    pub fn enter() -> io::Result<Screen> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
            std::process::exit(101);
        }));
        enable_raw_mode()?;
        let screen = Screen(());
        execute!(io::stdout(), EnterAlternateScreen, Hide)?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}
