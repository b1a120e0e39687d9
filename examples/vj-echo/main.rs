//! `vj-echo`: the example worker (bus name `echo`); see echo.rs.

mod echo;

fn main() -> std::process::ExitCode {
    // The suite's workers, whose sections config checks beside its own.
    vj::worker::main::<echo::Echo>(&vj::registry::WORKERS)
}
