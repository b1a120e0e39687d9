# vj-suite. `make run` brings the suite up and shows vj-status; `make test` runs every test.
# On a machine whose PID 1 is not systemd, both start a private systemd user manager
# (scripts/user-manager.sh) instead of the session's.

CARGO ?= cargo
BINDIR ?= $(HOME)/.local/bin
# Without systemd as PID 1 (no session manager), the private manager's runtime dir lives under
# /var/lib: sandboxed units lose sight of /run/user/UID there (systemd 252 in a mount namespace).
export XDG_RUNTIME_DIR ?= $(shell scripts/user-manager.sh runtime-dir)
UNAME := $(shell uname -s)

.PHONY: build deps test-deps install uninstall start stop run test bench soak lint fuzz eval-beats deb

build: deps
	$(CARGO) build --release --bins

deps:
ifeq ($(UNAME),Linux)
	@scripts/deps.sh
endif

test-deps:
ifeq ($(UNAME),Linux)
	@scripts/deps.sh --test
endif

install: build
	BINDIR=$(BINDIR) scripts/install.sh $${CARGO_TARGET_DIR:-target}/release

uninstall:
	BINDIR=$(BINDIR) scripts/install.sh --uninstall

# The Debian package (binaries in /usr/bin, user units in /usr/lib/systemd/user,
# /etc/vj/vj.toml as a conffile) in target/debian/. Nothing starts on install:
# `systemctl --user enable --now vj.target`.
deb: build
	scripts/deb.sh $${CARGO_TARGET_DIR:-target}/release $${CARGO_TARGET_DIR:-target}/debian

ifeq ($(UNAME),Darwin)
start:
	@for p in launchd/*.plist; do launchctl kickstart "gui/$$(id -u)/$$(basename $$p .plist)" || true; done
stop:
	@for p in launchd/*.plist; do launchctl kill TERM "gui/$$(id -u)/$$(basename $$p .plist)" || true; done
else
start:
	@scripts/user-manager.sh ensure
	systemctl --user start vj.target
stop:
	systemctl --user stop vj.target
endif

# Brings the suite up and shows its health (a degraded worker does not fail `make run`).
run: install start
	@sleep 1
	@$(BINDIR)/vj-status || true
	@echo
	@echo "vj-status again: XDG_RUNTIME_DIR=$(XDG_RUNTIME_DIR) $(BINDIR)/vj-status"

# Every test: unit, integration (real systemd user manager, ALSA, UDP, HTTP on 127.0.0.1),
# fuzz regressions, unit-file and plist checks. (`make lint` adds clippy.)
# `cargo test --no-run` builds the binaries the tests run, with the features the dev-dependencies
# add (rustix, regex, hyper, serde's alloc ...); a `cargo build --bins` first built the library,
# the binaries and every crate above those with the other feature set, only to build them again.
test: test-deps
	$(CARGO) fmt --check
	$(CARGO) test --no-run
	scripts/check-units.sh $${CARGO_TARGET_DIR:-target}/debug
	$(CARGO) test --no-fail-fast

bench: deps
	$(CARGO) bench

# The chaos soak for SOAK_SECONDS (default 600; `make test` runs it for 60): kill -9, SIGSTOP
# (brief, and for good: the watchdog), systemctl restart on every worker while clients hammer
# the control sockets and OSC flows to the debugger; prints the report docs/BENCHMARKS.md quotes.
soak: test-deps
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(CARGO) test --release --test soak -- --nocapture

# Beat, downbeat and tempo accuracy of vj-audio with exact ground truth, next to the naive
# tracker: the synthesized corpus (seeds 1-4 tuned the tracker; EVAL_SEED=101, the default
# here, is held out; EVAL_CORPUS=classic for the corpus tuned on until 2026-11-30), then
# recorded drums rendered by Hydrogen (scripts/h2corpus.py; EVAL_H2_SEED=101, the default, is
# the held-out set of seeds and kits; seeds below 100 are for tuning), then tracker modules
# rendered by libopenmpt, their rows as the grid (scripts/modcorpus.py; EVAL_MOD_SEED=101, the
# default, renders the held-out half of the modules).
eval-beats: deps
	EVAL_SEED=$${EVAL_SEED:-101} scripts/eval-beats.sh
	EVAL_CORPUS=h2 EVAL_SEED=$${EVAL_H2_SEED:-101} scripts/eval-beats.sh
	EVAL_CORPUS=mod EVAL_SEED=$${EVAL_MOD_SEED:-101} scripts/eval-beats.sh

# Every fuzz target to FUZZ_RUNS executions (default 10 million; FUZZ_SECONDS=N for a time
# limit instead) from the kept corpus in fuzz/corpus/; crashes become regressions in
# fuzz/regressions/.
fuzz: deps
	scripts/fuzz.sh

lint: deps
	$(CARGO) fmt --check
	scripts/import-graph --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) build --bins
	scripts/check-units.sh $${CARGO_TARGET_DIR:-target}/debug
