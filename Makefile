# pythread: every command a contributor or CI needs. `make test` is the gate.
CARGO ?= cargo
PROPTEST_LONG_CASES ?= 10000

.PHONY: test unit loom fmt-check clippy doc demo bench bench-instructions proptest-long mutants valgrind package package-test
.PHONY: python-module python-clippy conformance

## The full gate: what CI runs (see .ci/run).
test: unit loom fmt-check clippy doc package-test conformance

## The plain suite: unit, integration, model and doc tests.
unit:
	$(CARGO) test

## The loom suite, with the exact command the crate promises to pass.
loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test --release

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

## What a newcomer runs first: a table of threads, idents and outcomes.
demo:
	$(CARGO) run --quiet --example demo

## Benchmarks against std::thread (never part of `make test`; see BENCHMARKS.md):
## criterion timings, then heap use per start and handle sizes.
bench:
	$(CARGO) bench --bench compare
	$(CARGO) bench --bench alloc

## User-space instructions per start+join under callgrind (deterministic; see BENCHMARKS.md).
BENCH_N ?= 2000
bench-instructions:
	$(CARGO) bench --no-run --bench instructions
	@bin=$$(ls -t target/release/deps/instructions-* | grep -v '\.d$$' | head -1); \
	for v in std std_detached pythread; do \
		base=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v 0 2>&1 | sed -n 's/.*Collected : //p'); \
		full=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $$bin $$v $(BENCH_N) 2>&1 | sed -n 's/.*Collected : //p'); \
		echo "$$v: $$(( (full - base) / $(BENCH_N) )) instructions per start+join"; \
	done

## The model-based property test with many cases.
proptest-long:
	PROPTEST_CASES=$(PROPTEST_LONG_CASES) $(CARGO) test --release --test model

## Mutation testing of src/ against the plain suite (slow; see TESTING.md).
## Config (exclusions, timeouts): .cargo/mutants.toml. Shrinking is off for the
## model test here: a mutant only has to be caught, and shrinking a hang would
## cost the watchdog's 20 s per attempt.
## The tool is pinned (the exclusions in .cargo/mutants.toml match mutant names,
## which depend on its version): the pinned version is installed unless exactly it
## is already there. 27.1.0 installs with Rust 1.95 (see TESTING.md).
CARGO_MUTANTS_VERSION ?= 27.1.0
mutants:
	@$(CARGO) mutants --version 2>/dev/null | grep -qx 'cargo-mutants $(CARGO_MUTANTS_VERSION)' \
		|| $(CARGO) install --locked cargo-mutants@$(CARGO_MUTANTS_VERSION)
	PROPTEST_MAX_SHRINK_ITERS=0 $(CARGO) mutants --test-tool cargo --no-shuffle -j 2

## valgrind memcheck over a start/join/detach/panic cycle: 0 bytes definitely,
## indirectly or possibly lost. Fails on any memcheck error, on a definite,
## indirect or possible leak (exit code), and unless the summary itself shows 0
## bytes in each of the three (or no heap left at all). One block that is std's,
## not pythread's, is suppressed, and named, in examples/cycle.supp; "still
## reachable" memory (std's, at exit) is not checked.
VALGRIND_LOG ?= target/valgrind-cycle.log
valgrind:
	$(CARGO) build --release --example cycle
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--suppressions=examples/cycle.supp \
		--log-file=$(VALGRIND_LOG) ./target/release/examples/cycle; \
		status=$$?; cat $(VALGRIND_LOG); exit $$status
	@grep -Eq 'definitely lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@grep -Eq 'indirectly lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@grep -Eq 'possibly lost: 0 bytes|All heap blocks were freed' $(VALGRIND_LOG)
	@echo "valgrind: 0 bytes definitely, indirectly and possibly lost"

package:
	$(CARGO) package --allow-dirty

## Surface (issue 11): `make valgrind` also runs the TSS / registry cycle.
SURFACE_VALGRIND_LOG ?= target/valgrind-surface-cycle.log
valgrind: valgrind-surface
valgrind-surface:
	$(CARGO) build --release --example surface_cycle
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--suppressions=examples/cycle.supp \
		--log-file=$(SURFACE_VALGRIND_LOG) ./target/release/examples/surface_cycle; \
		status=$$?; cat $(SURFACE_VALGRIND_LOG); exit $$status
	@grep -Eq 'definitely lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@grep -Eq 'indirectly lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@grep -Eq 'possibly lost: 0 bytes|All heap blocks were freed' $(SURFACE_VALGRIND_LOG)
	@echo "valgrind (surface): 0 bytes definitely, indirectly and possibly lost"

## The published crate's own tests, run from the package: `cargo package` of the
## root crate only (`-p pythread`, so a workspace member added later is not
## packaged with it), the .crate unpacked into a fresh temporary directory outside
## the repository (no parent workspace, no file that is not in the package), then
## `cargo test` there, with its own target directory inside that temporary
## directory: a fresh build, as a user of the published crate gets (a cache shared
## across runs would reuse test binaries that still carry an earlier run's
## CARGO_MANIFEST_DIR). `--no-verify`: that `cargo test` builds the unpacked crate
## anyway. The temporary directory is removed afterwards.
package-test:
	@set -eu; \
	version=$$($(CARGO) pkgid -p pythread | sed 's/.*[#@]//'); \
	target=$$($(CARGO) metadata --no-deps --format-version 1 | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'); \
	$(CARGO) package --allow-dirty --no-verify -p pythread; \
	dir=$$(mktemp -d "$${TMPDIR:-/tmp}/pythread-package-test.XXXXXX"); \
	trap 'rm -rf "$$dir"' EXIT; \
	tar -xzf "$$target/package/pythread-$$version.crate" -C "$$dir"; \
	echo "package-test: cargo test in $$dir/pythread-$$version"; \
	cd "$$dir/pythread-$$version" && CARGO_TARGET_DIR="$$dir/target" $(CARGO) test

## The PyO3 module `_pythread` (python/, not a default member) and CPython's own thread tests
## run against it (CONFORMANCE.md). PYTHON runs them; PYTHON313, when a 3.13 interpreter is
## found, runs them again (its test files have 3.13's ThreadHandle tests). One abi3 build
## serves both.
PYTHON ?= python3
PYTHON313 ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys, test.lock_tests; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 \
	&& { echo "$$p"; break; }; done)
PYMODULE_DIR ?= target/python
CONFORMANCE_TIMEOUT ?= 900

python-module:
	PYO3_BUILD_EXTENSION_MODULE=1 PYO3_PYTHON=$(PYTHON) $(CARGO) build --release -p pythread-python
	mkdir -p $(PYMODULE_DIR)
	cp target/release/lib_pythread.so $(PYMODULE_DIR)/_pythread.abi3.so

## Lints the module only (`--no-deps`): `make clippy` lints the crate itself.
python-clippy:
	PYO3_PYTHON=$(PYTHON) $(CARGO) clippy -p pythread-python --no-deps -- -D warnings

## Bounded: the runner's watchdogs (one test, the whole run) and `timeout` around each run.
conformance: python-module python-clippy
	timeout $(CONFORMANCE_TIMEOUT) $(PYTHON) python/conformance/run.py --path $(PYMODULE_DIR) \
		|| { echo "conformance: FAILED under $(PYTHON) (exit $$?)"; exit 1; }
	@if [ -n "$(PYTHON313)" ]; then \
		timeout $(CONFORMANCE_TIMEOUT) $(PYTHON313) python/conformance/run.py --path $(PYMODULE_DIR) \
		|| { echo "conformance: FAILED under $(PYTHON313) (exit $$?)"; exit 1; }; \
	else echo "conformance: no Python 3.13 found; ran under $(PYTHON) only"; fi

## RustPython 0.5.0 with its `_thread` rebuilt on the crate (rustpython/, issue 20): the binary
## target/release/pythread-rustpython, then CPython's thread tests (the installed CPython's
## Lib/test) on it twice, with RustPython's own `_thread` and with the crate's, each class in
## its own process under `timeout` (CONFORMANCE.md). Not part of `make test`: a cold release
## build takes about 8 minutes and the member has about 300 dependencies. Fails when a test
## fails on the crate's `_thread` but not on RustPython's own.
.PHONY: rustpython rustpython-bench
CPYTHON_LIB ?= $(shell $(PYTHON) -c 'import os, test; print(os.path.dirname(os.path.dirname(test.__file__)))')
RUSTPYTHON_CLASS_TIMEOUT ?= 600
RUSTPYTHON_TEST_TIMEOUT ?= 90
RUSTPYTHON_BIN ?= target/release/pythread-rustpython

rustpython:
	$(CARGO) build --release -p pythread-rustpython
	$(PYTHON) rustpython/conformance/run.py --binary $(RUSTPYTHON_BIN) --lib $(CPYTHON_LIB) \
		--timeout $(RUSTPYTHON_CLASS_TIMEOUT) --test-timeout $(RUSTPYTHON_TEST_TIMEOUT)
	timeout 20 $(RUSTPYTHON_BIN) rustpython/conformance/untimed.py
	timeout 300 $(RUSTPYTHON_BIN) rustpython/conformance/fork_stress.py

## Python-level speed on RustPython, its own `_thread` and the crate's side by side (BENCHMARKS.md).
rustpython-bench:
	$(CARGO) build --release -p pythread-rustpython
	$(PYTHON) rustpython/bench/compare.py --binary $(RUSTPYTHON_BIN)

## User-space instructions per operation on RustPython, both `_thread`s (callgrind; deterministic,
## unlike the timings under load; see BENCHMARKS.md).
RUSTPYTHON_INSTR_N ?= 20000
.PHONY: rustpython-instructions
rustpython-instructions:
	$(CARGO) build --release -p pythread-rustpython
	@for row in acquire_release with_lock rlock; do for own in 1 0; do \
		count() { PYTHREAD_RUSTPYTHON_OWN=$$own valgrind --tool=callgrind --callgrind-out-file=/dev/null \
			$(RUSTPYTHON_BIN) rustpython/bench/instructions.py $$row $$1 2>&1 | sed -n 's/.*Collected : //p'; }; \
		base=$$(count 0); full=$$(count $(RUSTPYTHON_INSTR_N)); \
		echo "$$row $$( [ $$own = 1 ] && echo own || echo crate ): $$(( (full - base) / $(RUSTPYTHON_INSTR_N) )) instructions per operation"; \
	done; done
