# Homebrew formula for vj-suite. UNTESTED: written for macOS and Homebrew's formula API, but no
# macOS machine has run it (the project's machines are Linux). The launchd side it installs is
# the same launchd/*.plist that `make install` uses on macOS (also untested on a Mac here).
#
# Layout it needs (all from the source tree, nothing generated):
#   bin/vj-*                                   the binaries (cargo install)
#   share/vj-suite/launchd/net.vjsuite.*.plist templates: __BIN_DIR__, __BUS_DIR__, __HOME__
#   share/vj-suite/scripts/install.sh          fills them in for the current user and
#                                              bootstraps them into ~/Library/LaunchAgents
#   share/vj-suite/etc/vj.toml                 the defaults (copied to ~/.config/vj/vj.toml)
#   share/vj-suite/src/bin/*.rs                the binary list install.sh --uninstall reads
# launchd agents are per user and need the user's $TMPDIR for the bus directory, so they are
# installed by the user (see caveats), not by `brew install`; `brew services` cannot express
# the agents' named sockets (launch_activate_socket), so it is not used.
class VjSuite < Formula
  desc "Socket-activated services that describe live music over OSC for VJs"
  homepage "https://github.com/vj-suite/vj-suite"
  url "https://github.com/vj-suite/vj-suite/archive/refs/tags/v0.1.0.tar.gz"
  # sha256 of the release tarball: fill in when a release is tagged.
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"
  head "https://github.com/vj-suite/vj-suite.git", branch: "main"

  depends_on "rust" => :build
  depends_on :macos

  def install
    system "cargo", "install", *std_cargo_args
    share_dir = pkgshare
    share_dir.install "launchd", "etc"
    (share_dir/"scripts").install "scripts/install.sh"
    (share_dir/"src/bin").install Dir["src/bin/*.rs"]
    doc.install "README.md", "docs"
  end

  def caveats
    <<~EOS
      Install the launchd agents for your user (sockets owned by launchd, workers started on
      demand, vj-audio and vj-oscquery at login):
        BINDIR=#{opt_bin} #{opt_pkgshare}/scripts/install.sh --units-only
      Remove them with:
        BINDIR=#{opt_bin} #{opt_pkgshare}/scripts/install.sh --uninstall
      Then: vj-status
    EOS
  end

  test do
    assert_match "vj-status", shell_output("#{bin}/vj-status --help")
  end
end
