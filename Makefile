# The two commands of the README's Quick start are `make demo` and `make test`.
.PHONY: setup demo test lint bench clean-zfs ui fuzz

setup:
	scripts/setup

demo: setup
	scripts/demo

# The menu-bar app embeds ui/dist: build the UI first (and test it), then the workspace.
ui:
	scripts/ui-setup
	npm --prefix ui run check
	npm --prefix ui test
	npm --prefix ui run build

test: setup ui
	cargo build --workspace --bins
	cargo test --workspace

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup
	command -v sanoid >/dev/null || apt-get install -y -qq --no-install-recommends sanoid
	cargo build --release --workspace --bins
	cargo run --release -p backstop-e2e --bin bench
	cargo run --release -p backstop-e2e --bin bench_restore

# When zfs-fuse hangs (processes stuck in D state after a crash), this resets it.
clean-zfs:
	scripts/zfs-fuse-reset

# Fuzz every parser of another program's output (FUZZ_SECONDS per target, default 60).
fuzz:
	scripts/fuzz
