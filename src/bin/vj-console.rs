//! `vj-console`: the live operator console of vj-suite (a plain snapshot without a terminal).

fn main() -> std::process::ExitCode {
    vj::console::main()
}
