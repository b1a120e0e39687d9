//! `vj-echo`: the example worker (bus name `echo`); see echo.rs.

mod echo;

fn main() -> std::process::ExitCode {
    vj::worker::main::<echo::Echo>()
}
